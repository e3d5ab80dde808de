"""DomainRouter: routing modes, forced domain, losses against hand math."""
import math

import pytest
import torch
import torch.nn.functional as F

import hvlm.models  # noqa: F401
from hvlm.models.experts import load_balancing_loss
from hvlm.registry import MODELS

DOMAINS = ('general', 'sports', 'tutorials', 'news')


def router(**kw):
    torch.manual_seed(0)
    cfg = dict(type='DomainRouter', in_channels=8, domains=DOMAINS)
    cfg.update(kw)
    return MODELS.build(cfg)


def test_modes():
    x = torch.randn(5, 8)
    soft = router(mode='soft', temperature=2.)(x)
    torch.testing.assert_close(soft.weights, (soft.logits / 2.).softmax(-1))
    assert soft.ids is None
    hard = router(mode='hard')(x)
    assert torch.equal(hard.ids, hard.logits.argmax(-1))
    assert torch.equal(hard.weights, F.one_hot(hard.ids, 4).float())
    top = router(mode='topk', top_k=2)(x)
    p = top.logits.softmax(-1)
    for b in range(5):
        i, j = p[b].topk(2).indices.tolist()
        want = torch.zeros(4)
        want[i], want[j] = p[b, i], p[b, j]
        torch.testing.assert_close(top.weights[b], want / want.sum())
    forced = router(force_domain='news')(x)
    assert forced.logits is None and forced.ids.tolist() == [3] * 5
    assert router(force_domain='news').loss(forced, torch.zeros(5).long()) \
        == {}


def test_loss_is_ce_on_known_domains_plus_balance():
    r = router(loss_weight=1., balance_weight=0.5)
    routing = r(torch.randn(4, 8))
    gt = torch.tensor([1, -1, 3, 0])
    losses = r.loss(routing, gt)
    keep = torch.tensor([0, 2, 3])
    want = F.cross_entropy(routing.logits[keep], gt[keep])
    torch.testing.assert_close(losses['loss_router_cls'], want)
    p = routing.logits.softmax(-1)
    frac = torch.bincount(p.argmax(-1), minlength=4).float() / 4
    torch.testing.assert_close(losses['loss_router_balance'],
                               0.5 * 4 * (frac * p.mean(0)).sum())
    assert 0 <= losses['router_acc'] <= 1
    # no domain known: zero CE, still in the graph
    none = r.loss(routing, torch.full((4, ), -1))
    assert none['loss_router_cls'].item() == 0
    none['loss_router_cls'].backward()


def test_load_balancing_hand_cases():
    uniform = torch.full((4, 4), 0.25)
    assert load_balancing_loss(uniform).item() == pytest.approx(1.0)
    collapsed = torch.tensor([[1., 0.]] * 3)
    assert load_balancing_loss(collapsed).item() == pytest.approx(2.0)
    balanced = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
    # f = (0.5, 0.5), P = (0.5, 0.5) -> 2 * 0.5 = 1
    assert load_balancing_loss(balanced).item() == pytest.approx(1.0)


def test_router_learns_domains_from_features():
    r = router(mode='hard', balance_weight=0.01, loss_weight=1.)
    centres = torch.randn(4, 8) * 3
    gt = torch.arange(4).repeat(16)
    x = centres[gt] + torch.randn(64, 8) * 0.5
    opt = torch.optim.Adam(r.parameters(), lr=1e-2)
    for _ in range(60):
        loss = sum(v for k, v in r.loss(r(x), gt).items() if 'loss' in k)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (r(x).ids == gt).float().mean() > 0.95
    assert loss.item() < math.log(4) * 0.5


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode='best'"):
        router(mode='best')
    with pytest.raises(ValueError, match='top_k=5'):
        router(mode='topk', top_k=5)
    with pytest.raises(ValueError, match="force_domain='golf'"):
        router(force_domain='golf')
