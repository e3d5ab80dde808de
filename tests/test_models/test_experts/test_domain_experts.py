"""DomainExperts: identity at init, dispatch equals a dense reference."""
import pytest
import torch

import hvlm.models  # noqa: F401
from hvlm.registry import MODELS

DOMAINS = ('general', 'sports', 'news')


def experts():
    torch.manual_seed(0)
    return MODELS.build(dict(type='DomainExperts', in_channels=8,
                             domains=DOMAINS, hidden_ratio=2.))


def test_identity_at_init():
    m = experts()
    x = torch.randn(3, 5, 8)
    assert torch.equal(m(x, torch.eye(3)), x)
    assert m(x, None) is x


def test_mix_equals_dense_reference_and_grads_follow_weights():
    m = experts()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape) * 0.1)
    x = torch.randn(4, 5, 8)
    w = torch.tensor([[1., 0., 0.], [0., 0.3, 0.7], [0., 0., 0.],
                      [0., 0., 1.]])
    out = m(x, w)
    dense = x + sum(w[:, d, None, None] * m.experts[name](x)
                    for d, name in enumerate(DOMAINS))
    torch.testing.assert_close(out, dense)
    assert torch.equal(out[2], x[2])  # no domain: untouched
    m.zero_grad()
    m(x, torch.tensor([[1., 0., 0.]] * 4)).sum().backward()
    assert m.experts['general'][1].weight.grad is not None
    assert m.experts['sports'][1].weight.grad is None


def test_bad_weights():
    with pytest.raises(ValueError, match=r'expected \[B, D\] = \[2, 3\]'):
        experts()(torch.randn(2, 5, 8), torch.ones(2, 4))
