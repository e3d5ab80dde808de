"""clip_windows and VideoTokenBank against what they promise."""
import numpy as np
import pytest
import torch

from hvlm.apis import ClipRecord, VideoTokenBank, clip_windows
from hvlm.models.attention.cross_memory_attention import compress_memory


@pytest.mark.parametrize('total', [8, 13, 15, 16, 31, 38, 100, 257])
@pytest.mark.parametrize('clip_len,interval', [(4, 2), (8, 2), (8, 1),
                                               (3, 5)])
def test_clip_windows_cover_the_video(total, clip_len, interval):
    windows = clip_windows(total, clip_len, interval)
    span = (clip_len - 1) * interval + 1
    if total <= span:
        assert windows == [(0, total)]
        return
    sampled = set()
    for start, length in windows:
        assert length == span and 0 <= start and start + length <= total
        sampled.update(range(start, start + span, interval))
    sampled = np.array(sorted(sampled))
    # every frame is at most interval - 1 frames after a sampled one
    assert sampled[0] == 0
    assert np.diff(sampled).max() <= interval
    assert sampled[-1] >= total - interval
    # windows are in time order and the regular ones do not overlap
    starts = [s for s, _ in windows]
    assert starts == sorted(starts)
    assert all(b - a == clip_len * interval for a, b in zip(starts[:-2],
                                                            starts[1:-1]))


def test_clip_windows_rejects_an_empty_video():
    with pytest.raises(ValueError, match='total_frames=0'):
        clip_windows(0, 4, 2)


def _chunks(seed, num, n, c):
    g = torch.Generator().manual_seed(seed)
    for i in range(num):
        tokens = torch.randn(n, c, generator=g)
        size = torch.randint(1, 4, (n, ), generator=g).float()
        first = torch.full((n, ), 2 * i)
        steps = torch.stack([first, first + 1], -1)
        yield tokens, size, steps


def test_bank_keeps_sums_and_bounds():
    bank = VideoTokenBank(max_tokens=20)
    total_size, total_mass, sizes_in_bytes = 0., torch.zeros(6), []
    for tokens, size, steps in _chunks(0, 12, 8, 6):
        bank.add(tokens, size, steps)
        total_size += float(size.sum())
        total_mass += (tokens * size[:, None]).sum(0)
        assert len(bank) == min(20, 8 * (len(sizes_in_bytes) + 1))
        sizes_in_bytes.append(bank.nbytes)
        # merged entries are means: sizes and size-weighted sums are kept
        assert float(bank.size.sum()) == pytest.approx(total_size)
        torch.testing.assert_close((bank.tokens * bank.size[:, None]).sum(0),
                                   total_mass, rtol=1e-5, atol=1e-4)
        # adjacent merges keep time order and cover every step once seen
        assert (bank.steps[:, 0] <= bank.steps[:, 1]).all()
        assert (bank.steps[1:, 0] >= bank.steps[:-1, 0]).all()
        covered = set()
        for a, b in bank.steps.tolist():
            covered.update(range(a, b + 1))
        assert covered == set(range(2 * len(sizes_in_bytes)))
    assert len(set(sizes_in_bytes[2:])) == 1  # flat once over budget


def test_bank_merges_like_compress_memory():
    tokens, size, steps = next(_chunks(1, 1, 50, 8))
    bank = VideoTokenBank(max_tokens=12)
    bank.add(tokens, size, steps)
    ref_tokens, ref_size = compress_memory(tokens[None], size[None], 12)
    torch.testing.assert_close(bank.tokens, ref_tokens[0])
    torch.testing.assert_close(bank.size, ref_size[0])


def test_bank_checks_shapes():
    bank = VideoTokenBank(4)
    with pytest.raises(ValueError, match=r'must be \[N\] and \[N, 2\]'):
        bank.add(torch.zeros(3, 2), torch.ones(3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match='max_tokens=0'):
        VideoTokenBank(0)


def test_clip_record_fills_arrays_allocated_once():
    record = ClipRecord(num_clips=3)
    rows = [np.arange(8, dtype=np.float32).reshape(4, 2) + 10 * i
            for i in range(3)]
    record.append(scores=rows[0], time=np.arange(4.))
    first = record._arrays['scores']
    for r in rows[1:]:
        record.append(scores=r)
    # filled in place: the array of the first clip is the one kept
    assert record._arrays['scores'] is first
    np.testing.assert_array_equal(record['scores'], np.concatenate(rows))
    assert record.nbytes == first.nbytes + 3 * 4 * 8
    # a clip with more rows than the first grows the array, keeping rows
    record.append(scores=np.ones((10, 2), np.float32))
    assert len(record['scores']) == 22
    np.testing.assert_array_equal(record['scores'][:12],
                                  np.concatenate(rows))
    with pytest.raises(ValueError, match=r'scores: rows of shape \(3,\)'):
        record.append(scores=np.zeros((1, 3), np.float32))
    with pytest.raises(KeyError, match="no rows of 'actionness'"):
        record['actionness']
