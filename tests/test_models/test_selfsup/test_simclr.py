"""NT-Xent against the paper's formula, SimCLR through the registry, and
negatives gathered from two gloo ranks with their gradients."""
import numpy as np
import pytest
import torch

from hvlm.models.selfsup import nt_xent_loss
from hvlm.registry import MODELS
from tests.dist_helpers import run_two_ranks
from tests.test_models.test_selfsup.nt_xent_ranks import rank_worker


def paper_nt_xent(z1, z2, t):
    """Chen et al. 2020, eq. 1, averaged over all 2N views."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z1)
    losses = []
    for i in range(2 * n):
        p = (i + n) % (2 * n)
        denom = sum(np.exp(z[i] @ z[k] / t) for k in range(2 * n) if k != i)
        losses.append(-np.log(np.exp(z[i] @ z[p] / t) / denom))
    return np.mean(losses)


def test_loss_equals_the_paper_formula():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    for t in (0.07, 0.5):
        loss, acc = nt_xent_loss(
            torch.tensor(z1), torch.tensor(z2), t)
        np.testing.assert_allclose(loss.item(), paper_nt_xent(z1, z2, t),
                                   rtol=1e-6)
    # identical views of orthogonal samples: every positive wins
    eye = torch.eye(4)
    loss, acc = nt_xent_loss(eye, eye, 0.1)
    assert acc.item() == 1.0
    with pytest.raises(ValueError, match='temperature'):
        nt_xent_loss(eye, eye, 0.)


TINY_BACKBONE = dict(type='HViT', img_size=16, patch_size=4,
                     embed_dim_rgb=8, depths=(1, 1), num_heads=(1, 2))


def test_simclr_trains_and_predicts_through_the_registry():
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='SimCLR', backbone=TINY_BACKBONE, projection_dim=6,
             temperature=0.2,
             data_preprocessor=dict(
                 type='ImageDataPreprocessor', mean=[127.5] * 3,
                 std=[127.5] * 3,
                 batch_augments=[dict(type='SimCLRViews', crop_size=16)])))
    imgs = [torch.randint(0, 256, (3, 24, 24), dtype=torch.uint8)
            for _ in range(4)]
    data = model.data_preprocessor(dict(inputs=imgs, data_samples=[]), True)
    losses = model(**data, mode='loss')
    assert losses['loss'].item() > 0
    losses['loss'].backward()
    assert model.backbone.patch_embed.weight.grad.abs().sum() > 0
    assert model.projector[-1].weight.shape == (6, 16)
    from mmengine.structures import BaseDataElement
    samples = [BaseDataElement() for _ in range(2)]
    data = model.data_preprocessor(
        dict(inputs=imgs[:2], data_samples=samples), False)
    out = model(**data, mode='predict')
    assert out[0].feature.shape == (16, )
    with pytest.raises(ValueError, match='view pairs'):
        model(torch.rand(2, 3, 16, 16), mode='loss')


def test_two_ranks_equal_one_process():
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 5), torch.randn(6, 5)
    a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    loss, _ = nt_xent_loss(a, b, 0.3)
    loss.backward()
    out = sorted(run_two_ranks(rank_worker, z1, z2))
    # the mean of the ranks' losses is the global loss
    np.testing.assert_allclose(np.mean([o[1] for o in out]), loss.item(),
                               rtol=1e-5)
    # each rank's gradient, averaged over the 2 ranks as DDP does (the
    # gathered views carry the other rank's loss back), is the one
    # process's gradient
    grad_a = np.concatenate([o[2] for o in out]) / 2
    grad_b = np.concatenate([o[3] for o in out]) / 2
    np.testing.assert_allclose(grad_a, a.grad.numpy(), atol=1e-6)
    np.testing.assert_allclose(grad_b, b.grad.numpy(), atol=1e-6)
