"""TEMPURA and its GMMRelationHead against reference math re-implemented
in numpy: mixture uncertainties, the loss and its weighting, the prototype
memory's update rule; the model in PredCLS and SGCLS, its memory in the
checkpoint."""
import numpy as np
import pytest
import torch

from hvlm.models.heads.gmm_relation_head import (mixture_loss,
                                                 mixture_uncertainty,
                                                 uncertainty_weights)
from hvlm.models.scene_graphs.tempura import update_prototypes
from hvlm.registry import HEADS, MODELS
from hvlm.utils import register_all_modules
from tests.test_models.test_scene_graphs.test_sttran import _video

register_all_modules(init_default_scope=False)


def _np_uncertainty(pi, mu, var):
    P, K, C = mu.shape
    al = np.zeros((P, C))
    ep = np.zeros((P, C))
    for i in range(P):
        mean = sum(pi[i, k] * mu[i, k] for k in range(K))
        for k in range(K):
            al[i] += pi[i, k] * var[i, k]
            ep[i] += pi[i, k] * (mu[i, k] - mean)**2
    return al, ep


def test_mixture_uncertainty_matches_numpy():
    rng = np.random.default_rng(0)
    pi = rng.dirichlet(np.ones(3), 5)
    mu = rng.normal(size=(5, 3, 4))
    var = rng.uniform(0.1, 2, (5, 3, 4))
    al, ep = mixture_uncertainty(*(torch.tensor(a) for a in (pi, mu, var)))
    want_al, want_ep = _np_uncertainty(pi, mu, var)
    np.testing.assert_allclose(al.numpy(), want_al, rtol=1e-10)
    np.testing.assert_allclose(ep.numpy(), want_ep, rtol=1e-10)
    # one component, or identical components: nothing epistemic
    same = np.repeat(mu[:, :1], 3, 1)
    _, ep = mixture_uncertainty(torch.tensor(pi), torch.tensor(same),
                                torch.tensor(var))
    assert ep.abs().max() < 1e-12


def test_mixture_loss_and_weights_match_numpy():
    rng = np.random.default_rng(1)
    P, K, C = 4, 2, 3
    pi = rng.dirichlet(np.ones(K), P)
    mu = rng.normal(size=(P, K, C))
    var = rng.uniform(0.1, 1, (P, K, C))
    eps = rng.normal(size=(P, K, C))
    y = np.array([0, 2, 1, 1])
    z = mu + np.sqrt(var) * eps
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    want = (pi * -logp[np.arange(P), :, y]).sum(1)
    got = mixture_loss(*(torch.tensor(a) for a in (pi, mu, var)),
                       torch.tensor(y), False, torch.tensor(eps))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)
    multi = (rng.random((P, C)) < .5).astype(float)
    p = 1 / (1 + np.exp(-z))
    bce = -(multi[:, None] * np.log(p) + (1 - multi[:, None]) *
            np.log(1 - p)).mean(-1)
    got = mixture_loss(*(torch.tensor(a) for a in (pi, mu, var)),
                       torch.tensor(multi), True, torch.tensor(eps))
    np.testing.assert_allclose(got.numpy(), (pi * bce).sum(1), rtol=1e-10)
    # weights: u = U / (1 + U); 1 up to the threshold, then linear to 0
    U = torch.tensor([0., 1., 3., 9.])  # u = 0, .5, .75, .9
    w = uncertainty_weights(U, 0.5)
    torch.testing.assert_close(w, torch.tensor([1., 1., .5, .2]))
    assert uncertainty_weights(U, 1.0).eq(1).all()


def test_head_loss_is_the_weighted_mixture_loss():
    torch.manual_seed(0)
    head = HEADS.build(dict(type='GMMRelationHead', in_channels=6,
                            num_mixtures=3, uncertainty_threshold=0.2,
                            gmm_regularization=0.5)).eval()
    x = torch.randn(5, 6)
    att = torch.tensor([0, 1, 2, 0, 1])
    spa = (torch.rand(5, 6) < .5).float()
    con = (torch.rand(5, 17) < .5).float()
    losses = head.loss(x, att, spa, con)  # eval: no noise
    pi, mu, var = (t.detach().numpy().astype(np.float64)
                   for t in head(x)['attention'])
    al, ep = _np_uncertainty(pi, mu, var)
    U = (al + ep).mean(1)
    u = U / (1 + U)
    w = np.where(u <= 0.2, 1, (1 - u) / 0.8)
    logp = mu - np.log(np.exp(mu).sum(-1, keepdims=True))
    per = (pi * -logp[np.arange(5), :, att.numpy()]).sum(1)
    np.testing.assert_allclose(losses['loss_attention'].item(),
                               (w * per).mean(), rtol=1e-5)
    reg = 0
    for g in ('attention', 'spatial', 'contacting'):
        pi, _, var = (t.detach().numpy() for t in head(x)[g])
        reg += (pi * (0.5 * (var - np.log(var) - 1)).mean(-1)).sum(1).mean()
    np.testing.assert_allclose(losses['loss_gmm_reg'].item(), 0.5 * reg,
                               rtol=1e-5)
    # prediction: the mixture of the components' probabilities
    a, s, c = head.predict(x)
    pi, mu, _ = head(x)['spatial']
    torch.testing.assert_close(
        s, (pi[..., None] * mu.sigmoid()).sum(1))
    torch.testing.assert_close(a.sum(1), torch.ones(5))
    with pytest.raises(ValueError, match='num_mixtures=0'):
        HEADS.build(dict(type='GMMRelationHead', in_channels=6,
                         num_mixtures=0))


def test_update_prototypes_rule():
    memory = torch.zeros(3, 2)
    memory[2] = torch.tensor([10., 10.])
    filled = torch.tensor([False, False, True])
    feats = torch.tensor([[1., 0.], [0., 1.], [4., 4.]])
    labels = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 0, 1]]).bool()
    weights = torch.tensor([[1., 5., 1.], [3., 5., 1.], [7., 5., 3.]])
    update_prototypes(memory, filled, feats, labels, weights, 0.25)
    # empty slot 0 takes the weighted mean (1*[1,0] + 3*[0,1]) / 4
    torch.testing.assert_close(memory[0], torch.tensor([.25, .75]))
    # slot 1: no pair carries it, untouched and still empty
    torch.testing.assert_close(memory[1], torch.zeros(2))
    # filled slot 2 moves a quarter of the way to (1*[1,0] + 3*[4,4]) / 4
    batch = torch.tensor([13 / 4, 12 / 4])
    torch.testing.assert_close(memory[2], 10 + .25 * (batch - 10))
    assert filled.tolist() == [True, False, True]


def _tempura(mode='predcls', **kw):
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='TEMPURA', mode=mode, hidden_dim=32, num_heads=4,
        spatial_layer=1, temporal_layer=1, temporal_window=2, embed_dim=8,
        roi_size=3, mask_size=12, dropout=0.0, num_mixtures=3,
        backbone=dict(type='SmallConvNet', channels=(8, 16)), **kw))


@pytest.mark.parametrize('mode', ['predcls', 'sgcls'])
def test_tempura_trains_fills_memory_and_predicts(mode, tmp_path):
    rng = np.random.default_rng(2)
    videos = [_video(rng, 3), _video(rng, 2, 1)]
    inputs = [v[0] for v in videos]
    samples = [v[1] for v in videos]
    model = _tempura(mode, memory_momentum=0.5)
    assert not model.prototype_filled.any()
    # an empty memory: the read is the null slot's value, for every pair
    x = torch.randn(4, 32)
    torch.testing.assert_close(model.read_memory(x),
                               model.memory_value.bias.expand(4, 32))
    losses = model(inputs, samples, mode='loss')
    assert {'loss_attention', 'loss_spatial', 'loss_contacting',
            'loss_gmm_reg'} <= set(losses)
    assert ('loss_object' in losses) == (mode == 'sgcls')
    sum(losses.values()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, no_grad
    # the memory holds every predicate the batch carries, and nothing else
    carried = torch.cat([torch.cat([
        torch.nn.functional.one_hot(s['attention'].long(), 3),
        s['spatial'].long(), s['contacting'].long()], 1)
        for s in samples]).any(0)
    assert torch.equal(model.prototype_filled, carried)
    # a pair reads the attention-weighted prototypes (and the null slot)
    mem = torch.cat([torch.zeros(1, 32),
                     model.prototypes[model.prototype_filled]])
    q, k = model.memory_query(x), model.memory_key(mem)
    attn = (q @ k.t() / 32**0.5).softmax(-1)
    torch.testing.assert_close(model.read_memory(x),
                               attn @ model.memory_value(mem))
    model.eval()
    out = model(inputs, samples, mode='predict')
    for (_, s), o in zip(videos, out):
        M = len(s['obj_boxes'])
        assert o['pred_uncertainty'].shape == (M, 26)
        assert (o['pred_uncertainty'] > 0).all()
        torch.testing.assert_close(o['pred_attention'].sum(1), torch.ones(M))
    # the memory is a buffer: saved with the weights, restored from them
    path = tmp_path / 'tempura.pth'
    torch.save(model.state_dict(), path)
    fresh = _tempura(mode)
    fresh.load_state_dict(torch.load(path))
    assert torch.equal(fresh.prototypes, model.prototypes)
    assert torch.equal(fresh.prototype_filled, model.prototype_filled)
    fresh.eval()
    again = fresh(inputs, samples, mode='predict')
    torch.testing.assert_close(again[0]['pred_spatial'],
                               out[0]['pred_spatial'])
