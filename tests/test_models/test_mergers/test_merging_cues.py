import math

import pytest
import torch
import torch.nn.functional as F

import hvlm.models  # noqa: F401
from hvlm.models.mergers.grid_maps import downsample_frames, pool_to_grid
from hvlm.registry import MERGERS


def test_flow_recovers_a_known_shift():
    torch.manual_seed(0)
    texture = torch.rand(1, 1, 1, 40, 40)
    # frame 1 is frame 0 moved 2 px right and 1 px down
    nxt = torch.roll(texture, shifts=(1, 2), dims=(3, 4))
    flow = MERGERS.build(dict(type='DenseOpticalFlow', window_size=7))(
        torch.cat([texture, nxt], 2))
    inner = flow[0, :, 0, 8:-8, 8:-8]  # away from the wrapped border
    torch.testing.assert_close(inner[0].median(), torch.tensor(2.),
                               atol=0.05, rtol=0)
    torch.testing.assert_close(inner[1].median(), torch.tensor(1.),
                               atol=0.05, rtol=0)
    static = MERGERS.build(dict(type='DenseOpticalFlow'))(
        texture.expand(1, 1, 3, 40, 40))
    assert static.abs().max() < 0.05


def reference_flow(frames, window_size, temperature, smoothness, patch):
    """The definition, one displacement at a time: standardise the clip,
    cost(p, d) = mean over channels of (f_t(p) - f_t+1(p + d))^2, averaged
    over a patch (borders: the pixels inside; a neighbour's p + d outside
    the frame compares with the clip mean, 0), plus smoothness |d|^2,
    impossible where p + d itself leaves the frame; flow =
    softmax(-cost / T)-weighted mean of d."""
    f = (frames - frames.mean()) / frames.std()
    _, C, T, H, W = f.shape
    r, k = window_size // 2, patch // 2
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij')
    costs, shifts = [], []
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            ty, tx = ys + dy, xs + dx
            inside = (ty >= 0) & (ty < H) & (tx >= 0) & (tx < W)
            moved = f[0, :, 1:, ty.clamp(0, H - 1), tx.clamp(0, W - 1)]
            moved = moved * inside  # outside: the standardised mean, 0
            c = (f[0, :, :-1] - moved).square().mean(0)  # [T-1, H, W]
            c = torch.nn.functional.avg_pool2d(
                c[:, None], patch, stride=1, padding=k,
                count_include_pad=False)[:, 0]
            c = c + smoothness * (dx * dx + dy * dy)
            costs.append(c.masked_fill(~inside, float('inf')))
            shifts.append((dx, dy))
    weight = torch.softmax(-torch.stack(costs, -1) / temperature, -1)
    d = torch.tensor(shifts, dtype=weight.dtype)  # [K, 2]
    return torch.einsum('thwk,kc->cthw', weight, d)[None]  # [1, 2, T-1, H, W]


@pytest.mark.parametrize('channels, window, patch, temperature, atol', [
    (1, 5, 3, 0.5, 1e-5),
    (3, 5, 3, 0.5, 1e-5),
    (2, 7, 5, 0.5, 1e-5),
    (1, 3, 1, 0.5, 1e-5),
    # the merger's temperature: logits in the hundreds and gradients 25x
    # larger, so float32 rounding is 10x larger too
    (1, 5, 3, 0.02, 1e-4),
])
def test_flow_matches_its_definition_with_gradients(channels, window, patch,
                                                    temperature, atol):
    torch.manual_seed(0)
    clip = torch.rand(1, channels, 3, 9, 11, dtype=torch.float64)
    clip[:, :, 1:] = torch.roll(clip[:, :, :-1], shifts=(1, -1), dims=(3, 4))
    clip.requires_grad_(True)
    flow = MERGERS.build(
        dict(type='DenseOpticalFlow', window_size=window,
             temperature=temperature, smoothness=0.03, patch_size=patch))
    got = flow(clip)
    want = reference_flow(clip, window, temperature, 0.03, patch)
    torch.testing.assert_close(got, want.float(), atol=atol, rtol=atol)
    g = torch.randn_like(want)
    grad_got, = torch.autograd.grad(got, clip, g.float())
    grad_want, = torch.autograd.grad(want, clip, g)
    torch.testing.assert_close(grad_got.double(), grad_want, atol=10 * atol,
                               rtol=1e-4)


def test_flow_rejects_even_window():
    with pytest.raises(ValueError, match='window_size=4'):
        MERGERS.build(dict(type='DenseOpticalFlow', window_size=4))


def test_motion_magnitude_matches_definition():
    flow = torch.randn(2, 2, 3, 4, 5)
    raw, direction = MERGERS.build(
        dict(type='MotionMagnitude', normalize=False))(flow)
    torch.testing.assert_close(raw, flow.norm(dim=1), atol=1e-5, rtol=0)
    torch.testing.assert_close(direction, torch.atan2(flow[:, 1], flow[:, 0]))
    norm, _ = MERGERS.build(dict(type='MotionMagnitude'))(flow)
    assert norm.flatten(1).amax(1).tolist() == pytest.approx([1., 1.])
    slow, _ = MERGERS.build(dict(type='MotionMagnitude', min_motion=10.))(
        flow * 1e-3)
    assert slow.max() < 0.01  # a near-static clip stays near zero


def test_speed_is_the_magnitude_even_for_tiny_flows():
    """Symmetric matches cancel to flows of ~1e-30 px; their speed is still
    sqrt(dx^2 + dy^2 + 1e-12), as for any other flow."""
    torch.manual_seed(0)
    flow = torch.randn(2, 2, 3, 4, 5)
    flow[:, :, 0] *= 1e-30
    flow[0, 0, 1, 0, 0] = 2e-10  # just above the zeroed range
    magnitude = MERGERS.build(dict(type='MotionMagnitude', normalize=False))
    want = (flow.double().square().sum(1) + 1e-12).sqrt().float()
    torch.testing.assert_close(magnitude.speed(flow), want, atol=0, rtol=1e-6)
    torch.testing.assert_close(magnitude(flow)[0], want, atol=0, rtol=1e-6)


def test_motion_budget_bounds_and_mean():
    compression = MERGERS.build(
        dict(type='MotionBasedCompression', sensitivity=1.0))
    motion = torch.tensor([[0., 0., 0., 1.], [0.2, 0.2, 0.2, 0.2]])
    budget = compression(motion)
    assert budget[1].tolist() == pytest.approx([0.5] * 4)  # no contrast
    assert budget[0, 3] > 0.5 > budget[0, 0]
    assert budget.min() >= 0.25 and budget.max() <= 1.0
    with pytest.raises(ValueError, match='compression ratios'):
        MERGERS.build(dict(type='MotionBasedCompression',
                           min_compression_ratio=0.6))


def test_edge_and_color_saliency():
    frames = torch.zeros(1, 3, 1, 8, 8)
    frames[..., 4:] = 1.0  # a vertical edge between columns 3 and 4
    edge = MERGERS.build(dict(type='EdgeSaliency'))(frames)[0, 0]
    assert edge[:, 3:5].min() > 0.2 and edge[:, :2].max() < 1e-5
    frames = torch.zeros(1, 3, 2, 4, 4)
    frames[0, 0, :, 1, 1] = 1.0  # one red pixel
    color = MERGERS.build(dict(type='ColorSaliency'))(frames)
    mean = torch.tensor([1 / 16, 0, 0])
    expected = (torch.tensor([1., 0, 0]) - mean).norm()
    torch.testing.assert_close(color[0, 0, 1, 1], expected)
    torch.testing.assert_close(color[0, 0, 0, 0], mean.norm())


def sobel_reference(frames):
    """Sobel responses of the grey frames by conv2d, replicate padding."""
    B, _, T, H, W = frames.shape
    grey = frames.mean(1).reshape(B * T, 1, H, W)
    sobel = torch.tensor([[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]])
    kernels = torch.stack([sobel, sobel.t()]).unsqueeze(1) / 8
    grad = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode='replicate'), kernels)
    return grad.square().sum(1).add(1e-12).sqrt().view(B, T, H, W)


@pytest.mark.parametrize('size', [(16, 16), (5, 9), (1, 1), (2, 7)])
def test_edge_saliency_matches_sobel_convolution(size):
    torch.manual_seed(0)
    frames = torch.rand(2, 3, 4, *size)
    torch.testing.assert_close(
        MERGERS.build(dict(type='EdgeSaliency'))(frames),
        sobel_reference(frames))


@pytest.mark.parametrize('frame_size, grid', [
    ((64, 64), (4, 8, 8)),
    ((40, 56), (3, 5, 7)),
    ((50, 37), (2, 3, 5)),  # windows of adaptive pooling that overlap
])
def test_cue_pooling_matches_adaptive_avg_pool(frame_size, grid):
    torch.manual_seed(0)
    frames = torch.randn(2, 3, 6, *frame_size)
    small = downsample_frames(frames, grid, 2)
    torch.testing.assert_close(
        small,
        F.adaptive_avg_pool3d(frames, (6, grid[1] * 2, grid[2] * 2)))
    # maps with different frame counts, pooled one by one or together
    maps = [torch.rand(2, t, *small.shape[-2:]) for t in (grid[0], 6, 5)]
    together = pool_to_grid(maps, grid)  # [B, S, N]
    for i, cue in enumerate(maps):
        want = F.adaptive_avg_pool3d(cue.unsqueeze(1), grid).flatten(1)
        torch.testing.assert_close(pool_to_grid(cue, grid), want)
        torch.testing.assert_close(together[:, i], want)


def test_attention_saliency_from_weights_and_keys():
    saliency = MERGERS.build(dict(type='AttentionSaliency'))
    weights = torch.softmax(torch.randn(2, 3, 5, 5), -1)
    torch.testing.assert_close(saliency(weights), weights.mean((1, 2)))
    keys = torch.tensor([[[1., 0.], [1., 0.], [1., 0.], [0., 1.]]])
    score = saliency(keys)[0]
    assert score[3] > score[0] and score[0] == score[1]


def test_fusion_is_a_convex_combination_of_normalised_maps():
    fusion = MERGERS.build(
        dict(type='MultiSaliencyFusion', weights=dict(edge=3, color=1)))
    edge = torch.tensor([[0., 2., 4.]])
    color = torch.tensor([[10., 0., 5.]])
    expected = 0.75 * edge / 4 + 0.25 * color / 10
    torch.testing.assert_close(fusion(dict(edge=edge, color=color)), expected)
    # a missing source passes its weight to the others
    torch.testing.assert_close(
        fusion(dict(edge=edge, color=None)), edge / 4)
    with pytest.raises(ValueError, match='unknown saliency sources'):
        fusion(dict(motion=edge))
    learned = MERGERS.build(dict(type='MultiSaliencyFusion',
                                 weights=dict(edge=3, color=1),
                                 learnable=True))
    torch.testing.assert_close(learned.source_weights(),
                               torch.tensor([0.75, 0.25]))


def test_token_similarity_is_cosine():
    a, b = torch.randn(2, 4, 3), torch.randn(2, 5, 3)
    sim = MERGERS.build(dict(type='TokenSimilarity'))(a, b)
    ref = torch.nn.functional.cosine_similarity(
        a[:, :, None], b[:, None], dim=-1)
    torch.testing.assert_close(sim, ref)


def test_scheduler_plans_within_bounds():
    sched = MERGERS.build(dict(type='TemporalMergeScheduler', mode='uniform'))
    ratios = sched.stage_ratios(3)
    assert math.prod(ratios) == pytest.approx(0.5)
    first = MERGERS.build(dict(type='TemporalMergeScheduler'))
    assert first.stage_ratios(2) == [0.5, 1.0]
    for n in range(1, 300):
        keep = first.keep_count(n)
        assert math.ceil(n * 0.25) <= keep <= n
    assert first.keep_count(10, num_protected=8) == 8
    window = MERGERS.build(
        dict(type='TemporalMergeScheduler', temporal_window=1))
    mask = window.temporal_mask(torch.tensor([[0, 3]]), torch.tensor([[1, 1]]))
    assert mask.tolist() == [[[True, True], [False, False]]]
    # windows of 2 steps, {0, 1}, {2, 3}, ...: 1 and 2 are one step apart
    # but never merge, or frames 0, 1 and 2 could end up in one token
    mask = window.temporal_mask(torch.tensor([[1, 2]]), torch.tensor([[2, 0]]))
    assert mask.tolist() == [[[False, True], [True, False]]]


@pytest.mark.parametrize('mode', ['first', 'uniform', 'front'])
@pytest.mark.parametrize('points', [1, 2, 3, 5])
def test_scheduler_plans_every_merge_point(mode, points):
    sched = MERGERS.build(dict(type='TemporalMergeScheduler', mode=mode,
                               target_compression_ratio=0.3))
    ratios = sched.stage_ratios(points)
    assert math.prod(ratios) == pytest.approx(0.3)
    assert all(0.3 - 1e-9 <= r <= 1 for r in ratios)
    expected = dict(
        first=[0.3] + [1.0] * (points - 1),
        uniform=[0.3**(1 / points)] * points,
        # log-shares falling linearly: point i of k gets k - i
        front=[0.3**((points - i) / (points * (points + 1) / 2))
               for i in range(points)])[mode]
    assert ratios == pytest.approx(expected)
    for n, protected in ((256, 0), (97, 0), (40, 30)):
        counts = sched.keep_counts(n, points, protected)
        assert len(counts) == points
        assert counts[-1] == sched.keep_count(n, protected)
        assert all(a >= b for a, b in zip([n] + counts, counts))
        shares = [math.prod(ratios[:i + 1]) for i in range(points)]
        for count, share in zip(counts[:-1], shares):
            assert count == max(round(n * share), counts[-1])


def test_flow_stride_picks_frame_pairs():
    torch.manual_seed(0)
    clip = torch.rand(2, 1, 5, 12, 12)
    flow = MERGERS.build(dict(type='DenseOpticalFlow', window_size=5))
    every = flow(clip)  # pairs (0,1) (1,2) (2,3) (3,4)
    strided = flow(clip, stride=2)  # pairs (0,1) (2,3)
    assert every.shape == (2, 2, 4, 12, 12)
    torch.testing.assert_close(strided, every[:, :, ::2])
