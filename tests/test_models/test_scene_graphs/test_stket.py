"""STKET: the priors against a hand count, their normalisation, the
knowledge-embedded attention against its definition, the track windows,
PredCLS and SGCLS, and that no prediction reads ground-truth labels."""
import numpy as np
import pytest
import torch

from hvlm.datasets import count_scene_priors
from hvlm.models.scene_graphs.stket import KnowledgeBlock, track_windows
from hvlm.registry import MODELS
from hvlm.utils import register_all_modules
from tests.test_models.test_scene_graphs.test_sttran import _video

register_all_modules(init_default_scope=False)


def _tiny_annotation():
    # frame 0: class 5 (looking_at, in_front_of, holding), class 7
    # frame 1: class 5 twice (the first: not_looking_at, holding)
    # frame 2: class 5 (unsure, touching); class 7 (looking_at, above)
    spatial = np.zeros((6, 6), np.uint8)
    contacting = np.zeros((6, 17), np.uint8)
    spatial[0, 2] = 1  # in_front_of
    contacting[0, 5] = 1  # holding
    contacting[2, 5] = 1
    contacting[3, 12] = 1  # touching (of the second class-5 object)
    contacting[4, 12] = 1
    spatial[5, 0] = 1  # above
    return dict(obj_frames=np.array([0, 0, 1, 1, 2, 2]),
                obj_labels=np.array([5, 7, 5, 5, 5, 7]),
                attention=np.array([0, 1, 1, 2, 2, 0]),
                spatial=spatial, contacting=contacting)


def test_priors_equal_a_hand_count():
    c = count_scene_priors([_tiny_annotation()], num_classes=9)
    assert c['objects'].tolist() == [0, 0, 0, 0, 0, 4, 0, 2, 0]
    # class 5: attention 0,1,2,2; in_front_of once; holding twice,
    # touching twice
    want = np.zeros(26)
    want[[0, 1, 2]] = [1, 1, 2]
    want[3 + 2] = 1
    want[9 + 5] = 2
    want[9 + 12] = 2
    np.testing.assert_array_equal(c['cooccurrence'][5], want)
    # transitions of class 5: frame 0 -> 1 (first class-5 object) and
    # 1 -> 2; class 7 is absent from frame 1, so it has none
    looking, not_looking, unsure = 0, 1, 2
    front, holding, touching = 5, 14, 21
    t = c['transition'][5]
    assert t.sum() == 3 * 2 + 2 * 2
    for a, b in [(looking, not_looking), (looking, holding),
                 (front, not_looking), (front, holding),
                 (holding, not_looking), (holding, holding),
                 (not_looking, unsure), (not_looking, touching),
                 (holding, unsure), (holding, touching)]:
        assert t[a, b] == 1, (a, b)
    assert c['transition'][7].sum() == 0
    np.testing.assert_array_equal(
        np.nonzero(c['transition_from'][5])[0], [looking, not_looking,
                                                 front, holding])
    assert c['transition_from'][5][holding] == 2


def _stket(mode='predcls', **kw):
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='STKET', mode=mode, hidden_dim=32, num_heads=4,
        spatial_layer=1, temporal_layer=1, temporal_window=3, embed_dim=8,
        roi_size=3, mask_size=12, dropout=0.0,
        backbone=dict(type='SmallConvNet', channels=(8, 16)), **kw))
    model.set_priors(count_scene_priors([_tiny_annotation()], 37))
    return model


def test_set_priors_normalises():
    model = _stket()
    co, tr = model.cooccurrence.double(), model.transition.double()
    assert co[5, 0] == 0.25 and co[5, 9 + 5] == 0.5
    # an unseen class: frequencies over all 6 objects
    assert co[9, 0] == pytest.approx(2 / 6)
    # holding (twice followed) -> not_looking_at once, unsure once
    assert tr[5, 14, 1] == 0.5 and tr[5, 14, 2] == 0.5
    # a predicate never followed: the class's co-occurrence
    torch.testing.assert_close(tr[5, 25], co[5])
    with pytest.raises(ValueError, match='num_classes=37'):
        model.set_priors(count_scene_priors([_tiny_annotation()], 9))


def test_knowledge_block_matches_its_definition():
    torch.manual_seed(0)
    block = KnowledgeBlock(8, 2).eval()
    x, know = torch.randn(2, 4, 8), torch.randn(2, 4, 8)
    valid = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]).bool()
    h = block.norm1(x)
    q, k = block.qk(h + know).chunk(2, -1)
    v = block.v(h)
    outs = []
    for head in range(2):
        sl = slice(4 * head, 4 * head + 4)
        logits = q[..., sl] @ k[..., sl].transpose(1, 2) / 2.0
        logits = logits.masked_fill(~valid[:, None, :], float('-inf'))
        outs.append(logits.softmax(-1) @ v[..., sl])
    y = x + block.proj(torch.cat(outs, -1))
    want = y + block.mlp(block.norm2(y))
    got = block(x, know, valid)
    torch.testing.assert_close(got, want)
    # a lone token's knowledge cannot change what it reads
    one = torch.tensor([[1, 0, 0, 0]]).bool()
    a = block(x[:1], know[:1], one)[0, 0]
    b = block(x[:1], know[:1] + 5, one)[0, 0]
    torch.testing.assert_close(a, b)


def test_track_windows():
    video = torch.tensor([0, 0, 0, 0, 1, 0])
    frame = torch.tensor([0, 1, 1, 2, 1, 3])
    ident = torch.tensor([5, 5, 5, 5, 5, 7])
    win = track_windows(video, frame, ident, 3)
    assert win.tolist() == [[0, -1, -1], [1, 0, -1], [2, 0, -1],
                            [3, 1, 0], [4, -1, -1], [5, -1, -1]]


@pytest.mark.parametrize('mode', ['predcls', 'sgcls'])
def test_stket_trains_and_never_reads_ground_truth_at_test(mode):
    rng = np.random.default_rng(4)
    videos = [_video(rng, 4), _video(rng, 3, 1)]
    inputs = [v[0] for v in videos]
    samples = [v[1] for v in videos]
    model = _stket(mode)
    losses = model(inputs, samples, mode='loss')
    for stage in ('', 'spatial_stage_', 'temporal_stage_'):
        for g in ('attention', 'spatial', 'contacting'):
            assert torch.isfinite(losses[f'loss_{stage}{g}'])
    assert ('loss_object' in losses) == (mode == 'sgcls')
    sum(losses.values()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, no_grad
    model.eval()
    out = model(inputs, samples, mode='predict')
    # garbled ground truth: other predicates (and, in SGCLS, other object
    # classes, which that mode must predict) give the same predictions
    g_rng = np.random.default_rng(5)
    garbled = []
    for s in samples:
        M = len(s['obj_boxes'])
        g = dict(s, attention=torch.from_numpy(g_rng.integers(0, 3, M)),
                 spatial=1 - s['spatial'], contacting=1 - s['contacting'])
        if mode == 'sgcls':
            g['obj_labels'] = torch.from_numpy(g_rng.integers(2, 37, M))
        garbled.append(g)
    again = model(inputs, garbled, mode='predict')
    for o, a in zip(out, again):
        for k in ('pred_attention', 'pred_spatial', 'pred_contacting',
                  'pred_labels', 'pred_scores'):
            assert torch.equal(o[k], a[k]), k
    # the priors do reach the predictions
    model.cooccurrence.mul_(0).add_(1)
    moved = model(inputs, samples, mode='predict')
    assert not torch.allclose(moved[0]['pred_spatial'],
                              out[0]['pred_spatial'])
    with pytest.raises(RuntimeError, match='SceneGraphPriorsHook'):
        fresh = MODELS.build(dict(
            type='STKET', hidden_dim=32, num_heads=4, embed_dim=8,
            roi_size=3, mask_size=12,
            backbone=dict(type='SmallConvNet', channels=(8, 16))))
        fresh(inputs, samples, mode='predict')
