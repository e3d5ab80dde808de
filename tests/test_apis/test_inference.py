"""init_model and inference_video on real videos and a really trained
checkpoint: agreement with the test loop, flat memory on long videos, and
the errors users meet."""
import copy
import gc
import json
import warnings

import decord
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

from hvlm.apis import init_model, inference_video
from hvlm.datasets.demo_data import _write_mp4
from hvlm.engine.runner import HVLMRunner
from hvlm.models.attention.cross_memory_attention import CrossMemoryAttention
from hvlm.utils import CheckpointLoadError
from tests.test_tools.conftest import TINY

QUESTION = 'what happens first?'


@pytest.fixture(scope='module')
def model(tiny_checkpoint):
    return init_model(TINY, str(tiny_checkpoint))


@pytest.fixture(scope='module')
def frames(tiny_demo_root):
    """Every frame of one demo test video, ``[T, H, W, 3]`` uint8."""
    path = f'{tiny_demo_root}/test/videos/sports_test_0000.mp4'
    reader = decord.VideoReader(path)
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def clip_of(model):
    """``(clip_len, frame_interval)`` of the config's test SampleFrames."""
    step = next(t for t in model.cfg.test_dataloader.dataset.pipeline
                if t['type'] == 'SampleFrames')
    return step['clip_len'], step['frame_interval']


def write_video(path, frames, fps=10):
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_mp4(str(path), frames, fps)
    return str(path)


def test_init_model_restores_what_inference_needs(model, tiny_checkpoint):
    assert not model.training
    assert 'roll_left' in model.dataset_meta['classes']
    assert model.dataset_meta['answers']
    heads = model.head.heads
    for task in ('video_qa', 'video_captioning'):
        tokenizer = heads[task].tokenizer
        assert tokenizer is not None
        # the ids of the trained tokenizer: the checkpoint's extra state
        state = torch.load(tiny_checkpoint, weights_only=False)['state_dict']
        saved = bytes(state[f'head.heads.{task}._extra_state'].tolist())
        assert tokenizer.to_str() == saved.decode('utf-8')
    assert model.cfg.filename == TINY


def test_init_model_names_a_bad_checkpoint(tmp_path, tiny_checkpoint):
    missing = tmp_path / 'nope.pth'
    with pytest.raises(CheckpointLoadError, match=str(missing)):
        init_model(TINY, str(missing))
    broken = tmp_path / 'broken.pth'
    broken.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    with pytest.raises(CheckpointLoadError, match=str(broken)):
        init_model(TINY, str(broken))
    with pytest.raises(CheckpointLoadError,
                       match=f'{tiny_checkpoint} does not fit the model'):
        init_model(TINY, str(tiny_checkpoint),
                   cfg_options={'model.backbone.embed_dims': (16, 24)})


def test_one_clip_matches_the_test_loop(model, frames, tmp_path):
    """A video of exactly one clip: inference_video and the model's
    test_step through the config's test dataloader agree on every task."""
    clip_len, interval = clip_of(model)
    split = tmp_path / 'split'
    video = write_video(split / 'videos' / 'one_clip.mp4',
                        frames[:(clip_len - 1) * interval + 1])
    result = inference_video(model, video, question=QUESTION,
                             progress=False)
    json.dumps(result)  # plain Python all the way
    assert result['num_clips'] == 1

    cfg = copy.deepcopy(model.cfg)
    loader = cfg.test_dataloader
    loader.dataset.update(data_root=str(split), domains=None)
    for step in loader.dataset.pipeline:
        if step['type'] == 'SampleFrames':
            step['num_clips'] = 1
    with DefaultScope.overwrite_default_scope('hvlm'):
        batch = next(iter(HVLMRunner.build_dataloader(loader.to_dict())))
    batch['data_samples'][0].questions = [QUESTION]
    with torch.no_grad():
        ref = model.test_step(batch)[0]

    det = result['action_detection']
    np.testing.assert_allclose(det['frames']['time'],
                               ref.metainfo['frame_times'], rtol=1e-6)
    np.testing.assert_allclose(det['frames']['actionness'],
                               ref.pred_actionness.numpy(), rtol=1e-5)
    np.testing.assert_allclose(det['frames']['score'],
                               ref.pred_frame_scores.max(-1).values.numpy(),
                               rtol=1e-5)
    ref_segments = ref.pred_segments.clamp(0, result['duration'])
    np.testing.assert_allclose([[s['start'], s['end']]
                                for s in det['segments']],
                               ref_segments.numpy().reshape(-1, 2),
                               rtol=1e-6)
    assert [s['label_id'] for s in det['segments']] == \
        ref.pred_segment_labels.tolist()
    classes = model.dataset_meta['classes']
    for seg in det['segments']:
        if seg['label_id'] < len(classes):
            assert seg['label'] == classes[seg['label_id']]

    assert result['qa']['answer_id'] == ref.pred_qa[0]['answer_id']
    assert result['qa']['score'] == pytest.approx(ref.pred_qa[0]['score'],
                                                  rel=1e-5)
    assert [c['text'] for c in result['captioning']['captions']] == \
        [c['text'] for c in ref.pred_captions]


def _long_videos(frames, tmp_path):
    return {
        k: write_video(tmp_path / f'x{k}.mp4', np.concatenate([frames] * k))
        for k in (1, 2, 4)
    }


def test_long_videos_stream_in_flat_memory(model, frames, tmp_path,
                                           monkeypatch):
    decoded = []
    get_batch = decord.VideoReader.get_batch

    def counting_get_batch(self, indices):
        decoded.append(len(indices))
        return get_batch(self, indices)

    monkeypatch.setattr(decord.VideoReader, 'get_batch', counting_get_batch)
    results = {
        k: inference_video(model, path, question=QUESTION, memory_tokens=40,
                           progress=False)
        for k, path in _long_videos(frames, tmp_path).items()
    }
    clip_len, interval = clip_of(model)
    # clip by clip: no decode call reads more than one clip's frames
    assert max(decoded) <= clip_len
    assert results[4]['num_clips'] > results[2]['num_clips'] > \
        results[1]['num_clips']
    memory = {k: r['memory'] for k, r in results.items()}
    for k in (1, 2, 4):
        assert memory[k]['bank_tokens'] == 40
    assert memory[1]['state_bytes'] == memory[2]['state_bytes'] == \
        memory[4]['state_bytes']
    assert memory[2]['peak_state_bytes'] == memory[4]['peak_state_bytes']
    for k, r in results.items():
        times = r['action_detection']['frames']['time']
        assert np.all(np.diff(times) > 0)
        assert 0 <= times[0] and times[-1] < r['duration']
        assert r['duration'] == pytest.approx(k * len(frames) / 10)
        # the last sampled frame is within one frame interval of the end
        assert times[-1] >= r['duration'] - (interval + 1) / 10
        for item in r['action_detection']['segments'] + \
                r['captioning']['captions']:
            assert 0 <= item['start'] <= item['end'] <= r['duration']


def _live_tensors():
    with warnings.catch_warnings():  # deprecated torch objects warn
        warnings.simplefilter('ignore')
        return sum(1 for o in gc.get_objects()
                   if isinstance(o, torch.Tensor))


def test_what_is_kept_per_clip_is_bounded(model, frames, tmp_path,
                                          monkeypatch):
    """No tensor outlives its clip: the per-frame outputs go into arrays
    allocated once (each small tensor kept per clip pinned heap memory
    that the allocator could neither reuse nor give back, and resident
    memory grew with the video's length), so the live tensors are as many
    at the last clip as at the third, and the per-frame arrays hold a few
    numbers per decoded frame."""
    import hvlm.apis.inference as inference
    counts = []
    encode = inference._encode_clip

    def counting_encode(*args, **kwargs):
        gc.collect()
        counts.append(_live_tensors())
        return encode(*args, **kwargs)

    monkeypatch.setattr(inference, '_encode_clip', counting_encode)
    video = _long_videos(frames, tmp_path)[4]
    result = inference_video(model, video, question=QUESTION,
                             memory_tokens=40, progress=False)
    assert len(counts) == result['num_clips'] >= 10
    assert counts[-1] == counts[2], counts
    num_frames = len(result['action_detection']['frames']['time'])
    num_classes = model.head.heads['action_detection'].num_classes
    # time, actionness and class scores per frame, a step start per step
    # (at most one per frame), in 8-byte numbers, plus the slack of one clip
    clip_len, _ = clip_of(model)
    assert result['memory']['per_frame_bytes'] <= \
        8 * (num_frames + clip_len) * (num_classes + 3)


def test_cross_memory_attention_carries_its_bank(tiny_checkpoint, frames,
                                                 tmp_path):
    """A backbone of CrossMemoryAttention (same weights: the attentions
    share their projections) carries its bank from clip to clip; the
    banks stay at memory_size however long the video."""
    model = init_model(
        TINY, str(tiny_checkpoint),
        cfg_options={
            'model.backbone.attention':
            dict(type='CrossMemoryAttention', memory_size=24)
        })
    attentions = [
        m for m in model.modules() if isinstance(m, CrossMemoryAttention)
    ]
    assert attentions
    videos = _long_videos(frames, tmp_path)
    results = {
        k: inference_video(model, videos[k], task='action_detection',
                           progress=False)
        for k in (2, 4)
    }
    for k in (2, 4):
        assert results[k]['memory']['cross_memory_tokens'] == \
            24 * len(attentions)
    assert results[2]['memory']['state_bytes'] == \
        results[4]['memory']['state_bytes'] > 0
    # the config's setting is back and nothing is left for the next video
    assert all(not a.carry_memory and a.memory_bank is None
               for a in attentions)


def test_errors_name_what_is_wrong(model, tmp_path):
    video = str(tmp_path / 'missing.mp4')
    with pytest.raises(RuntimeError, match=f'{video}: file does not exist'):
        inference_video(model, video, progress=False)
    corrupt = tmp_path / 'corrupt.mp4'
    corrupt.write_bytes(b'\x00\x00\x00\x18ftypmp42' + b'garbage' * 100)
    with pytest.raises(RuntimeError, match=str(corrupt)):
        inference_video(model, str(corrupt), progress=False)
    with pytest.raises(ValueError, match="task 'qa' needs a question"):
        inference_video(model, video, task='qa')
    with pytest.raises(ValueError, match="task='detect' is not one of"):
        inference_video(model, video, task='detect')


def test_bank_reads_as_one_clip_with_each_entry_at_its_steps():
    """The text heads read the bank through video_memory: each entry's
    token, log(size) and first and last step come back as the bank holds
    them, from an index of S*K tubelets (K: most entries on one step)
    rather than one slot per entry and step."""
    from hvlm.apis.inference import _bank_features
    from hvlm.apis.streaming import VideoTokenBank
    from hvlm.models.heads import video_memory
    g = torch.Generator().manual_seed(0)
    bank = VideoTokenBank(max_tokens=24)
    for clip in range(30):  # 2 steps and 8 tokens per clip
        first = torch.randint(0, 2, (8, ), generator=g) + 2 * clip
        last = torch.maximum(first, torch.randint(0, 2, (8, ), generator=g)
                             + 2 * clip)
        bank.add(torch.randn(8, 6, generator=g),
                 torch.randint(1, 4, (8, ), generator=g).float(),
                 torch.stack([first, last], -1))
    S = 60
    feats = _bank_features(bank, torch.arange(S) * 0.5)
    tokens, bias, steps = video_memory(feats)
    torch.testing.assert_close(tokens[0], bank.tokens)
    torch.testing.assert_close(bias[0], bank.size.log())
    assert torch.equal(steps[0], bank.steps)
    assert feats.grid[0] == S and feats.index.numel() < S * len(bank)
