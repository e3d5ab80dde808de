import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hvlm.models.mergers import MergeInfo, unmerge
from hvlm.registry import MERGERS

OFF = dict(motion=dict(enabled=False), saliency=dict(enabled=False))


def build(ratio=0.5, **kwargs):
    cfg = dict(
        type='AdaptiveTokenMerger',
        adaptive_merging=dict(
            target_compression_ratio=ratio,
            min_compression_ratio=min(0.25, ratio),
            max_compression_ratio=1.0))
    cfg.update(kwargs)
    return MERGERS.build(cfg)


def tome_reference(x, metric, size, r, protect_first=False):
    """Bipartite soft matching written from the ToMe paper (Bolya et al.
    2023, Sec. 3): alternate split, cosine similarity, the r A-tokens with
    the best edges merge into their B partner, size-weighted averages.
    Returns every input token's merged value and merged size."""
    B, N, C = x.shape
    metric = metric / metric.norm(dim=-1, keepdim=True)
    a, b = metric[:, ::2], metric[:, 1::2]
    scores = a @ b.transpose(1, 2)
    if protect_first:
        scores[:, 0] = -math.inf
    values = torch.empty(B, N, C)
    sizes = torch.empty(B, N)
    for i in range(B):
        best, partner = scores[i].max(-1)
        merged = best.argsort(descending=True)[:r].tolist()
        groups = {2 * j + 1: [2 * j + 1] for j in range(N // 2)}
        for j in range(a.shape[1]):
            if j in merged:
                groups[2 * partner[j].item() + 1].append(2 * j)
            else:
                groups[2 * j] = [2 * j]
        for members in groups.values():
            s = size[i, members]
            avg = (x[i, members] * s[:, None]).sum(0) / s.sum()
            values[i, members] = avg
            sizes[i, members] = s.sum()
    return values, sizes


@pytest.mark.parametrize('N, ratio, with_keys, with_size, protect', [
    (64, 0.5, False, False, False),
    (64, 0.75, True, False, False),
    (63, 0.6, True, True, False),
    (65, 0.55, True, True, True),  # a protected class token, as ToMe
])
def test_equals_tome_with_cues_off(N, ratio, with_keys, with_size, protect):
    torch.manual_seed(0)
    merger = build(ratio, num_protected_tokens=int(protect), **OFF)
    x = torch.randn(3, N, 8)
    keys = torch.randn(3, N, 5) if with_keys else None
    size = torch.randint(1, 5, (3, N)).float() if with_size else None
    info = merger(x, shape=None, size=size, attn=keys)
    keep = merger.scheduler.keep_count(N, int(protect))
    assert isinstance(info, MergeInfo) and info.shape is None
    assert info.x.shape == (3, keep, 8)
    ref_x, ref_size = tome_reference(
        x, x if keys is None else keys,
        torch.ones(3, N) if size is None else size, N - keep, protect)
    torch.testing.assert_close(unmerge(info.x, info.index), ref_x)
    torch.testing.assert_close(
        unmerge(info.size[..., None], info.index)[..., 0], ref_size)


def test_odd_count_round_removes_all_of_a():
    """With odd N, A holds ceil(N/2) tokens and one round may merge them
    all, leaving the floor(N/2) B tokens: one token more than ToMe's cap of
    floor(N/2) per round (docs/TOKEN_MERGING.md)."""
    torch.manual_seed(0)
    merger = build(0.5, **OFF)
    x, keys = torch.randn(2, 63, 8), torch.randn(2, 63, 5)
    info = merger(x, shape=None, attn=keys, keep=31)
    assert info.x.shape == (2, 31, 8)
    ref_x, _ = tome_reference(x, keys, torch.ones(2, 63), r=32)
    torch.testing.assert_close(unmerge(info.x, info.index), ref_x)


def test_protected_tokens_never_merge():
    torch.manual_seed(0)
    merger = build(0.25, num_protected_tokens=3, **OFF)
    x = torch.randn(2, 3 + 4 * 4 * 4, 6)
    x[:, :3] = x[:, 3:6]  # identical to real tokens: tempting to merge
    info = merger(x, shape=(4, 4, 4), frames=None)
    assert info.index[:, :3].tolist() == [[0, 1, 2]] * 2
    assert (info.index[:, 3:] >= 3).all()
    torch.testing.assert_close(info.x[:, :3], x[:, :3])
    assert info.size[:, :3].tolist() == [[1., 1., 1.]] * 2


@pytest.mark.parametrize('ratio', [1.0, 0.75, 0.5, 0.3, 0.25])
def test_sizes_and_index_consistent_across_rounds(ratio):
    torch.manual_seed(1)
    merger = build(ratio)
    x = torch.randn(2, 4 * 6 * 6, 8)
    frames = torch.randn(2, 3, 8, 24, 24)
    size = torch.randint(1, 4, (2, 144)).float()
    info = merger(x, shape=(4, 6, 6), size=size, frames=frames,
                  attn=torch.randn(2, 144, 4))
    keep = info.x.shape[1]
    assert 0.25 <= keep / 144 <= 1.0
    assert keep == merger.scheduler.keep_count(144)
    for b in range(2):
        # each slot's size is the sum of the sizes sent to it
        summed = torch.zeros(keep).index_add(0, info.index[b], size[b])
        torch.testing.assert_close(summed, info.size[b])
        expected = torch.zeros(keep, 8).index_add(
            0, info.index[b], x[b] * size[b, :, None]) / summed[:, None]
        torch.testing.assert_close(info.x[b], expected)


def test_keep_and_cues_given_by_the_caller():
    """An encoder passes how many tokens to keep and the cue maps of an
    earlier merge; then the frames are not read again and the cues come
    back merged like the tokens (size-weighted)."""
    torch.manual_seed(0)
    merger = build(0.5, num_protected_tokens=1)
    x = torch.randn(2, 1 + 36, 8)
    size = torch.randint(1, 4, (2, 37)).float()
    cues = dict(motion=torch.rand(2, 37), edge=torch.rand(2, 37))
    info = merger(x, shape=None, size=size, keep=20, cues=cues,
                  attn=torch.randn(2, 37, 4))
    assert info.x.shape == (2, 20, 8)
    for name, cue in cues.items():
        summed = torch.zeros(2, 20).scatter_add(1, info.index, cue * size)
        torch.testing.assert_close(info.cues[name], summed / info.size)
    # keep >= N: nothing merges, the cues pass through
    same = merger(x, shape=None, keep=37, cues=cues)
    assert same.x is x and same.cues is cues
    with pytest.raises(ValueError, match='keep=0'):
        merger(x, shape=None, keep=0)


def test_frame_cues_are_read_once():
    """Given cues, the merger never touches the frames (garbage frames
    change nothing); without them it measures the same cues itself."""
    torch.manual_seed(0)
    merger = build(0.5)
    frames = torch.rand(2, 3, 8, 24, 24)
    x = torch.randn(2, 4 * 6 * 6, 8)
    cues = merger.frame_cues(frames, (4, 6, 6))
    assert sorted(cues) == ['color', 'edge', 'motion']
    own = merger(x, shape=(4, 6, 6), frames=frames)
    given = merger(x, shape=(4, 6, 6), frames=torch.full_like(frames, 9.),
                   cues=cues)
    assert torch.equal(own.index, given.index)
    merger.set_cues(motion=False, saliency=False)
    assert merger.frame_cues(frames, (4, 6, 6)) == {}


def test_frame_cues_match_their_definition():
    """Motion, edges and colour: each cue module on the downsampled frames,
    averaged over each tubelet by adaptive pooling, whatever the frame and
    grid sizes. Motion is in patches per frame (cue pixels / 2), divided by
    the clip's fastest token but never by less than ``min_motion``; raw
    with ``normalize=False``."""
    torch.manual_seed(0)
    merger = build(0.5)
    for frames, grid in ((torch.rand(2, 3, 8, 24, 24), (4, 6, 6)),
                         (torch.rand(2, 3, 6, 40, 56), (3, 5, 7))):
        small = F.adaptive_avg_pool3d(
            frames, (frames.shape[2], grid[1] * 2, grid[2] * 2))
        grey = small.mean(1, keepdim=True)
        radius = math.ceil(7 * small.shape[-1] / frames.shape[-1])
        stride = math.ceil(frames.shape[2] / grid[0])
        flow = merger.flow(grey, window_size=2 * radius + 1, stride=stride)
        speed = flow.square().sum(1).sqrt() / 2  # [B, P, h, w] patches

        def pooled(cue):
            return F.adaptive_avg_pool3d(cue.unsqueeze(1), grid).flatten(1)

        motion = pooled(speed)
        top = motion.amax(1, keepdim=True).clamp_min(0.5)
        want = dict(motion=motion / top,
                    edge=pooled(merger.edge(small)),
                    color=pooled(merger.color(small)))
        got = merger.frame_cues(frames, grid)
        assert list(got) == ['motion', 'edge', 'color']
        for name in want:
            torch.testing.assert_close(got[name], want[name])
        raw = build(0.5, motion=dict(normalize=False)).frame_cues(frames, grid)
        torch.testing.assert_close(raw['motion'], motion)


def adaptive_reference(x, metric, size, importance, keep, strength,
                       protected=0):
    """The matching written from the docstrings, one clip and one round at
    a time: odd tokens and the most important ones form B (a stable sort
    of ``parity + strength * importance``; protected tokens last), every A
    token links to its most similar B token (cosine, first maximum), the
    ``r`` A tokens with the highest ``similarity - strength * importance``
    merge into their partners (size-weighted means; importance: the
    maximum), and rounds repeat until ``keep`` tokens are left. Returns
    every input token's merged value and merged size."""
    B, N, C = x.shape
    values, sizes = torch.empty(B, N, C), torch.empty(B, N)
    for b in range(B):
        tokens, met, sz, imp = x[b], metric[b], size[b], importance[b]
        members = [[i] for i in range(N)]  # original tokens per token
        while len(members) > keep:
            n = len(members)
            num_b = min(n // 2, n - protected)
            r = min(n - keep, n - protected - num_b)
            priority = (torch.arange(n) % 2).float() + strength * imp
            priority[:protected] = -1e4
            order = sorted(range(n), key=lambda i: -priority[i].item())
            b_set, a_set = order[:num_b], order[num_b:]
            unit = met / met.norm(dim=-1, keepdim=True)
            partner, rank = {}, {}
            for a in a_set:
                best = int((unit[b_set] @ unit[a]).argmax())
                partner[a] = b_set[best]
                rank[a] = -math.inf if a < protected else (
                    unit[b_set[best]] @ unit[a] - strength * imp[a]).item()
            rep = list(range(n))
            for a in sorted(a_set, key=lambda a: -rank[a])[:r]:
                rep[a] = partner[a]
            groups = [[i for i in range(n) if rep[i] == s] for s in range(n)
                      if rep[s] == s]
            weight = [sz[g] for g in groups]
            tokens = torch.stack([(tokens[g] * w[:, None]).sum(0) / w.sum()
                                  for g, w in zip(groups, weight)])
            met = torch.stack([(met[g] * w[:, None]).sum(0) / w.sum()
                               for g, w in zip(groups, weight)])
            imp = torch.stack([imp[g].max() for g in groups])
            sz = torch.stack([w.sum() for w in weight])
            members = [sum((members[i] for i in g), []) for g in groups]
        for k, group in enumerate(members):
            values[b, group] = tokens[k]
            sizes[b, group] = sz[k]
    return values, sizes


@pytest.mark.parametrize('N, keep, protected, with_size', [
    (64, 32, 0, False),  # every A token merges (no ranking needed)
    (64, 44, 0, True),  # the best-ranked A tokens merge
    (64, 12, 0, True),  # three rounds
    (66, 30, 2, True),  # protected tokens, two rounds
])
def test_matching_matches_its_definition(N, keep, protected, with_size):
    """Given the importance, the merge is the documented matching."""
    torch.manual_seed(0)
    merger = build(0.5, num_protected_tokens=protected)
    x, keys = torch.randn(2, N, 8), torch.randn(2, N, 5)
    size = torch.randint(1, 4, (2, N)).float() if with_size else None
    importance = torch.rand(2, N - protected)
    merger.importance = lambda *args: importance
    info = merger(x, shape=None, size=size, attn=keys, keep=keep)
    assert info.x.shape == (2, keep, 8)
    want_x, want_size = adaptive_reference(
        x, keys, torch.ones(2, N) if size is None else size,
        F.pad(importance, (protected, 0)), keep, merger.strength, protected)
    torch.testing.assert_close(unmerge(info.x, info.index), want_x)
    torch.testing.assert_close(
        unmerge(info.size[..., None], info.index)[..., 0], want_size)


def test_plan_follows_the_ratio():
    merger = build(0.5, adaptive_merging=dict(
        target_compression_ratio=0.5, mode='uniform'))
    assert merger.plan(256, 2) == [181, 128]
    merger.set_compression_ratio(0.25)
    assert merger.compression_ratio == 0.25
    assert merger.plan(256, 2) == [128, 64]


def moving_square_clip(T=8, H=64, W=64, side=12, speed=4, seed=0):
    """A textured static background with one bright square moving right.

    Returns the clip ``[1, 3, T, H, W]`` and, per (T0=T/2, H/8, W/8) token,
    whether the square touches its tubelet."""
    rng = np.random.default_rng(seed)
    background = rng.uniform(0.3, 0.5, (3, 1, H, W)).astype(np.float32)
    clip = np.repeat(background, T, axis=1)  # [3, T, H, W]
    covered = np.zeros((T, H, W), bool)
    for t in range(T):
        x0, y0 = 6 + speed * t, 26
        clip[:, t, y0:y0 + side, x0:x0 + side] = [[[0.95]], [[0.9]], [[0.2]]]
        covered[t, y0:y0 + side, x0:x0 + side] = True
    moving = covered.reshape(T // 2, 2, H // 8, 8, W // 8, 8).any(
        axis=(1, 3, 5)).reshape(-1)
    return torch.from_numpy(clip)[None], torch.from_numpy(moving)


def test_static_clip_noise_is_not_motion():
    """A static clip's flow noise (sensor noise, borders, edges) is not
    blown up to full importance: ``min_motion`` floors the per-clip
    scaling, while a clip that moves a patch per frame still reaches 1
    where it moves. ``normalize=False`` gives the raw speed."""
    clip, _ = moving_square_clip()
    background = clip[:, :, :1].expand_as(clip)  # the square never came
    rng = np.random.default_rng(1)
    noise = torch.from_numpy(
        rng.normal(0, 0.01, tuple(clip.shape)).astype(np.float32))
    merger = build(0.5, saliency=dict(enabled=False))
    static = merger.frame_cues(background + noise, (4, 8, 8))['motion']
    raw = build(0.5, saliency=dict(enabled=False),
                motion=dict(normalize=False)).frame_cues(
                    background + noise, (4, 8, 8))['motion']
    assert raw.max() < 0.1, raw.max()  # patches per frame
    torch.testing.assert_close(static, raw / 0.5)
    assert static.max() < 0.2
    fast, moving = moving_square_clip(speed=8)  # a patch per frame
    motion = merger.frame_cues(fast + noise, (4, 8, 8))['motion'][0]
    assert motion.max() == 1
    assert motion[moving].mean() > 3 * motion[~moving].mean()


def kept_per_area(info, region):
    """Output tokens per input token of a region: each token counts as
    1 / (size of its slot), so the counts over all tokens add up to K."""
    share = 1.0 / unmerge(info.size[..., None], info.index)[0, :, 0]
    return share[region].sum().item() / region.sum().item()


@pytest.mark.parametrize('cues', [
    dict(saliency=dict(enabled=False)),  # motion alone
    dict(),  # motion and all saliency sources (default)
])
def test_moving_region_keeps_more_tokens(cues):
    clip, moving = moving_square_clip()
    # tokens: the tubelet pixels through a fixed random projection
    torch.manual_seed(0)
    tubelets = clip.reshape(1, 3, 4, 2, 8, 8, 8, 8).permute(
        0, 2, 4, 6, 1, 3, 5, 7).reshape(1, 256, -1)
    x = tubelets @ torch.randn(tubelets.shape[-1], 32) / 20
    merger = build(0.5, **cues)
    info = merger(x, shape=(4, 8, 8), frames=clip)
    ratio = info.x.shape[1] / 256
    assert 0.25 <= ratio <= 1.0 and ratio == 0.5
    moving_rate = kept_per_area(info, moving)
    static_rate = kept_per_area(info, ~moving)
    assert moving_rate >= 2 * static_rate, (moving_rate, static_rate)
    # ToMe alone is content-blind: no such preference
    blind = build(0.5, **OFF)(x, shape=(4, 8, 8), frames=clip)
    assert kept_per_area(blind, moving) < 2 * kept_per_area(blind, ~moving)


def test_temporal_window_limits_merges():
    torch.manual_seed(0)
    merger = build(
        0.5, **OFF,
        adaptive_merging=dict(target_compression_ratio=0.5,
                              temporal_window=0))
    x = torch.randn(2, 4 * 3 * 3, 4)
    x[:, 9:] = x[:, :9].repeat(1, 3, 1)  # frames identical: cross-time bait
    info = merger(x, shape=(4, 3, 3))
    frame = torch.arange(4).repeat_interleave(9)
    for b in range(2):
        for s in range(info.x.shape[1]):
            assert frame[info.index[b] == s].unique().numel() == 1


def frames_spanned(index, num_slots, T, per_frame):
    """For every output slot, the first and last input frame behind it."""
    frame = torch.arange(T).repeat_interleave(per_frame)
    return [[(frame[row == k].min().item(), frame[row == k].max().item())
             for k in range(num_slots)] for row in index]


@pytest.mark.parametrize('window', [1, 2])
def test_temporal_window_holds_over_several_rounds(window):
    """Keeping a quarter takes two matching rounds; a token merged in the
    first round stands for several frames, and the second round must
    count its whole span (not one representative frame) against the
    window. Identical frames make cross-time merges the most similar."""
    torch.manual_seed(0)
    merger = build(
        0.25, **OFF,
        adaptive_merging=dict(target_compression_ratio=0.25,
                              temporal_window=window))
    x = torch.randn(2, 8 * 2 * 2, 4)
    x[:, 4:] = x[:, :4].repeat(1, 7, 1)
    info = merger(x, shape=(8, 2, 2))
    assert info.x.shape[1] == 8
    for row in frames_spanned(info.index, 8, 8, 4):
        assert all(last - first <= window for first, last in row), row
    # each token's step travels on in the cues, for later merge points:
    # it lies in the window of the frames the token stands for
    width = window + 1
    for steps, row in zip(info.cues['time_step'].tolist(),
                          frames_spanned(info.index, 8, 8, 4)):
        assert [s // width for s in steps] == [f // width for f, _ in row]


def test_temporal_window_impossible_is_named():
    """One token per frame and window 0: nothing may merge."""
    merger = build(0.5, **OFF,
                   adaptive_merging=dict(target_compression_ratio=0.5,
                                         temporal_window=0))
    with pytest.raises(RuntimeError, match='temporal_window=0'):
        merger(torch.randn(1, 6, 4), shape=(6, 1, 1))


def test_config_errors():
    with pytest.raises(ValueError, match='compression ratios'):
        build(adaptive_merging=dict(target_compression_ratio=0.1,
                                    min_compression_ratio=0.25))
    with pytest.raises(ValueError, match='unknown motion options'):
        build(motion=dict(window=15))
    with pytest.raises(ValueError, match='unknown saliency options'):
        build(saliency=dict(edges=True))
    with pytest.raises(ValueError, match=r'shape=\(2, 2, 2\)'):
        build()(torch.randn(1, 9, 4), shape=(2, 2, 2))
