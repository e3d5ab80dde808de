"""What inference_video hands the user: segments in time order with
millisecond times, the run's provenance, top-k answers, a warning for
unknown question words, a score threshold and limits that say when they
cut something off."""
import numpy as np
import pytest
import torch

import hvlm
from hvlm.apis import inference_video, init_model
from hvlm.datasets.demo_data import _write_mp4
from tests.test_tools.conftest import TINY


@pytest.fixture(scope='module')
def long_video(tiny_demo_root, tmp_path_factory):
    """One demo test video played four times: many segments."""
    import decord
    reader = decord.VideoReader(
        f'{tiny_demo_root}/test/videos/sports_test_0000.mp4')
    frames = reader.get_batch(list(range(len(reader)))).asnumpy()
    path = tmp_path_factory.mktemp('long') / 'x4.mp4'
    _write_mp4(str(path), np.concatenate([frames] * 4), 10)
    return str(path)


@pytest.fixture(scope='module')
def busy_model(tiny_checkpoint, long_video):
    """The trained tiny model with actionness thresholds spread over the
    range its actionness takes on ``long_video``, so that it finds many
    segments of different scores."""
    model = init_model(TINY, str(tiny_checkpoint))
    act = inference_video(model, long_video, task='action_detection',
                          progress=False)['action_detection']['frames'][
                              'actionness']
    thresholds = np.quantile(act, [0.2, 0.4, 0.6, 0.8]).tolist()
    return init_model(TINY, str(tiny_checkpoint), cfg_options={
        'model.head.heads.action_detection.actionness_thresholds':
        thresholds,
        'model.head.heads.action_detection.nms_iou': 0.9
    })


def _is_ms(value):
    return abs(value * 1000 - round(value * 1000)) < 1e-6


def test_segments_in_time_order_with_millisecond_times(busy_model,
                                                       long_video,
                                                       tiny_checkpoint):
    result = inference_video(busy_model, long_video, question='what '
                             'happens first?', progress=False)
    segments = result['action_detection']['segments']
    assert len(segments) >= 5
    keys = [(s['start'], s['end']) for s in segments]
    assert keys == sorted(keys)
    times = result['action_detection']['frames']['time']
    for value in [t for k in keys for t in k] + times + [result['duration']]:
        assert _is_ms(value)
    captions = result['captioning']['captions']
    assert [c['start'] for c in captions] == sorted(c['start']
                                                    for c in captions)
    assert all(_is_ms(c['start']) and _is_ms(c['end']) for c in captions)
    # provenance
    assert result['config'] == TINY
    assert result['checkpoint'] == str(tiny_checkpoint)
    assert result['hvlm_version'] == hvlm.__version__


def test_top_k_answers_and_unknown_words(busy_model, long_video):
    seen = inference_video(busy_model, long_video, task='qa',
                           question='what is the object doing first?', top_k=3,
                           progress=False)
    qa = seen['qa']
    assert len(qa['top_k']) == 3
    scores = [a['score'] for a in qa['top_k']]
    assert scores == sorted(scores, reverse=True) and sum(scores) <= 1
    assert (qa['answer_id'], qa['score']) == (qa['top_k'][0]['answer_id'],
                                              qa['top_k'][0]['score'])
    assert qa['unknown_words'] == [] and seen['warnings'] == []

    unseen = inference_video(busy_model, long_video, task='qa',
                             question='is the zebraball red?',
                             progress=False)
    assert unseen['qa']['unknown_words'] == ['zebraball']
    assert len(unseen['warnings']) == 1
    assert "'zebraball'" in unseen['warnings'][0]


def test_score_threshold_and_segment_limit(busy_model, long_video):
    full = inference_video(busy_model, long_video, task='action_detection',
                           progress=False)['action_detection']
    assert not full['max_segments_reached']
    scores = sorted((s['score'] for s in full['segments']), reverse=True)
    thr = (scores[2] + scores[3]) / 2
    cut = inference_video(busy_model, long_video, task='action_detection',
                          score_thr=thr, progress=False)['action_detection']
    assert sorted(s['score'] for s in cut['segments']) == sorted(scores[:3])
    assert cut['score_thr'] == thr

    limited = inference_video(busy_model, long_video,
                              task='action_detection', max_segments=2,
                              progress=False)
    det = limited['action_detection']
    assert det['max_segments'] == 2 and det['max_segments_reached']
    assert sorted(s['score'] for s in det['segments']) == sorted(scores[:2])
    assert any('max_segments=2' in w for w in limited['warnings'])
    # exactly as many as found: nothing was cut off
    exact = inference_video(busy_model, long_video,
                            task='action_detection',
                            max_segments=len(scores), progress=False)
    assert not exact['action_detection']['max_segments_reached']


def test_caption_limit(busy_model, long_video):
    result = inference_video(busy_model, long_video, task='captioning',
                             max_captions=2, progress=False)
    captioning = result['captioning']
    assert len(captioning['captions']) == 2
    assert captioning['max_captions'] == 2
    assert captioning['max_captions_reached']
    assert any('max_captions=2' in w for w in result['warnings'])
    # the head's own setting is back
    head = busy_model.head.heads['video_captioning']
    assert head.max_pred_segments == 5


def test_bad_limits_are_named(busy_model, long_video):
    with pytest.raises(ValueError, match='max_segments=0'):
        inference_video(busy_model, long_video, max_segments=0,
                        progress=False)
    with pytest.raises(ValueError, match='score_thr=1.5'):
        inference_video(busy_model, long_video, score_thr=1.5,
                        progress=False)


def test_ground_truth_from_the_data_layout(busy_model, tiny_demo_root):
    video = f'{tiny_demo_root}/test/videos/sports_test_0001.mp4'
    result = inference_video(busy_model, video, task='action_detection',
                             progress=False)
    actions = result['ground_truth']['actions']
    assert actions and all(
        set(a) == {'start', 'end', 'label'} for a in actions)
    assert torch.tensor([a['start'] for a in actions]).diff().ge(0).all()
