"""Vector quantisation: the straight-through gradient and both losses
against hand math, the lookup against a numpy nearest-neighbour search,
groups, and the codebook's start from the data."""
import numpy as np
import pytest
import torch

from hvlm.models.layers import VectorQuantizer, vector_quantize
from hvlm.models.layers.vector_quantizer import nearest_codes


def test_straight_through_and_losses_match_hand_math():
    z = torch.tensor([[[1., 2.]]], requires_grad=True)  # [N=1, G=1, d=2]
    codebook = torch.tensor([[[0., 0.], [1., 1.], [3., 3.]]],
                            requires_grad=True)  # [G=1, K=3, d=2]
    # squared distances to the entries: 5, 1, 5 -> entry 1
    z_q, codes, cb, commit = vector_quantize(z, codebook)
    assert codes.tolist() == [[1]]
    torch.testing.assert_close(z_q, torch.tensor([[[1., 1.]]]))
    # both losses: mean over the 2 elements of (1-1)^2 and (1-2)^2
    assert cb.item() == pytest.approx(0.5)
    assert commit.item() == pytest.approx(0.5)
    # straight through: d(w . z_q)/dz = w; nothing reaches the codebook
    w = torch.tensor([[[3., -2.]]])
    (w * z_q).sum().backward()
    torch.testing.assert_close(z.grad, w)
    assert codebook.grad is None or not codebook.grad.any()
    # commitment: d/dz mean((z - sg(e))^2) = 2 (z - e) / 2 = [0, 1];
    # no gradient to the codebook
    z.grad = None
    codebook.grad = None
    commit.backward()
    torch.testing.assert_close(z.grad, torch.tensor([[[0., 1.]]]))
    assert codebook.grad is None or not codebook.grad.any()
    # codebook loss: d/de_1 mean((sg(z) - e)^2) = (e - z) = [0, -1], the
    # other entries untouched, no gradient to z
    z_q, codes, cb, commit = vector_quantize(z, codebook)
    z.grad = None
    cb.backward()
    torch.testing.assert_close(
        codebook.grad, torch.tensor([[[0., 0.], [0., -1.], [0., 0.]]]))
    assert z.grad is None or not z.grad.any()


def test_lookup_is_the_numpy_nearest_neighbour():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(64, 3, 4)).astype(np.float32)  # [N, G, d]
    codebook = rng.normal(size=(3, 11, 4)).astype(np.float32)  # [G, K, d]
    dist = ((z[:, :, None, :] - codebook[None]) ** 2).sum(-1)  # [N, G, K]
    want = dist.argmin(-1)
    got = nearest_codes(torch.from_numpy(z), torch.from_numpy(codebook))
    np.testing.assert_array_equal(got.numpy(), want)
    # the module: slices of a [2, 32, 12] feature, each slice its own book
    vq = VectorQuantizer(12, codebook_size=11, num_groups=3,
                         commitment_weight=0.25, codebook_weight=2.0).eval()
    with torch.no_grad():
        vq.codebook.copy_(torch.from_numpy(codebook))
    x = torch.from_numpy(z).reshape(2, 32, 12)
    x_q, codes, losses = vq(x)
    assert codes.shape == (2, 32, 3)
    np.testing.assert_array_equal(codes.reshape(64, 3).numpy(), want)
    chosen = codebook[np.arange(3)[None], want]  # [N, G, d]
    np.testing.assert_allclose(x_q.detach().reshape(64, 3, 4).numpy(),
                               chosen, rtol=1e-6, atol=1e-6)
    sq = ((z - chosen) ** 2).mean()
    assert losses['loss_codebook'].item() == pytest.approx(2.0 * sq,
                                                           rel=1e-5)
    assert losses['loss_commitment'].item() == pytest.approx(0.25 * sq,
                                                             rel=1e-5)


def test_codebook_starts_from_the_first_training_batch():
    torch.manual_seed(0)
    vq = VectorQuantizer(6, codebook_size=4, num_groups=2,
                         dead_threshold=0)
    x = torch.randn(10, 6)
    _, codes, losses = vq(x)
    assert bool(vq.initialised)
    # every entry is a row slice of that batch: its rows that were copied
    # quantise to themselves
    rows = x.view(10, 2, 3)
    for g in range(2):
        for k in range(4):
            assert (rows[:, g] == vq.codebook[g, k]).all(-1).any()
    before = vq.codebook.detach().clone()
    vq(torch.randn(10, 6) * 5)  # later batches do not re-initialise
    assert torch.equal(vq.codebook.detach(), before)
    # evaluation never initialises; an empty batch is fine
    fresh = VectorQuantizer(6, codebook_size=4).eval()
    fresh(x)
    assert not bool(fresh.initialised)
    out, codes, losses = vq(torch.zeros(0, 6))
    assert codes.shape == (0, 1 * 2) and losses['loss_codebook'] == 0
    with pytest.raises(ValueError, match='divisible by num_groups'):
        VectorQuantizer(6, num_groups=4)


def test_dead_entries_restart_on_batch_features():
    torch.manual_seed(0)
    vq = VectorQuantizer(2, codebook_size=4, usage_decay=0.5,
                         dead_threshold=0.3)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[[0., 0.], [50., 50.], [60., 60.],
                                         [70., 70.]]]))
    vq.initialised.fill_(True)
    x = torch.randn(8, 2) * 0.1  # every row nearest to entry 0
    vq(x)
    # usage = 0.5 * 1 + 0.5 * counts: entry 0 saw 8 rows, the others none
    torch.testing.assert_close(vq.usage, torch.tensor([[4.5, .5, .5, .5]]))
    before = vq.codebook.detach().clone()
    vq(x)  # 0.25 < 0.3: entries 1-3 are dead and move onto rows of x
    after = vq.codebook.detach()[0]
    assert torch.equal(after[0], before[0, 0])
    for k in (1, 2, 3):
        assert (x == after[k]).all(-1).any(), k
    torch.testing.assert_close(vq.usage[0, 1:], torch.ones(3))
    # no restart in evaluation
    vq.eval()
    vq.usage.zero_()
    frozen = vq.codebook.detach().clone()
    vq(torch.randn(8, 2) + 10)
    assert torch.equal(vq.codebook.detach(), frozen)
