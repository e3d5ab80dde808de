"""Malformed annotation files fail at build time, naming file/entry/field."""
import json
import logging
import os.path as osp

import pytest
from mmengine.logging import MMLogger

from hvlm.datasets import AnnotationError
from hvlm.registry import DATASETS

META = [
    dict(video_id='v0', domain='sports', duration=4.0),
    dict(video_id='v1', domain='news', duration=5.0),
]
GOOD_ACTION = dict(start=0.0, end=1.0, label='rest', confidence=1.0)


def _build(root):
    return DATASETS.build(dict(type='VideoDataset', data_root=str(root)))


def _split(tmp_path, files):
    ann = tmp_path / 'annotations'
    ann.mkdir(parents=True)
    (tmp_path / 'videos').mkdir()
    files = dict({'metadata.json': META}, **files)
    for name, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (ann / name).write_text(text)
    return tmp_path


def _actions(*actions, video_id='v1'):
    return {
        'action_detection.json': [
            dict(video_id='v0', actions=[GOOD_ACTION]),
            dict(video_id=video_id, actions=list(actions)),
        ]
    }


# (files, file name, fragments the message must contain)
CASES = {
    'invalid json': ({
        'video_qa.json':
        '[\n {"video_id": "v0",\n  "qa_pairs": [}\n]'
    }, 'video_qa.json', ['invalid JSON', 'line 3', 'column']),
    'top level not a list': ({
        'video_captioning.json': {
            'video_id': 'v0'
        }
    }, 'video_captioning.json', ['top level is a dict', 'expected a list']),
    'entry not a dict': ({
        'action_detection.json': [dict(video_id='v0', actions=[]), 'v1']
    }, 'action_detection.json', ['entry 1', "is a str ('v1')"]),
    'missing key':
    (_actions(dict(start=0.0, label='rest')), 'action_detection.json',
     ['entry 1', "video_id='v1'", "'actions[0].end'", 'missing']),
    'wrong type':
    (_actions(GOOD_ACTION,
              dict(GOOD_ACTION, start='0.5')), 'action_detection.json', [
                  'entry 1', "video_id='v1'", "'actions[1].start'", "'0.5'",
                  'finite number'
              ]),
    'end before start': (_actions(GOOD_ACTION,
                                  dict(GOOD_ACTION, start=2.0,
                                       end=1.5)), 'action_detection.json', [
                                           'entry 1', "video_id='v1'",
                                           "'actions[1].end'", 'is 1.5',
                                           '>= actions[1].start (2)'
                                       ]),
    'unknown video':
    (_actions(GOOD_ACTION, video_id='v9'), 'action_detection.json',
     ['entry 1', "video_id='v9'", "'video_id'",
      'id of a video of this split']),
    'duplicate video': (_actions(GOOD_ACTION,
                                 video_id='v0'), 'action_detection.json',
                        ['entry 1', "video_id='v0'", 'entry 0 already']),
    'caption time': ({
        'video_captioning.json':
        [dict(video_id='v0', captions=[dict(text='a b', time=[1.0])])]
    }, 'video_captioning.json', [
        'entry 0', "video_id='v0'", "'captions[0].time'", '[start, end]'
    ]),
    'caption end before start': ({
        'video_captioning.json':
        [dict(video_id='v0', captions=[dict(text='a b', time=[3, 1])])]
    }, 'video_captioning.json', ["'captions[0].time[1]'", 'is 1']),
    'qa answer not a string': ({
        'video_qa.json':
        [dict(video_id='v1', qa_pairs=[dict(question='q?', answer=3)])]
    }, 'video_qa.json', [
        "video_id='v1'", "'qa_pairs[0].answer'", 'non-empty string'
    ]),
    'actions not a list': ({
        'action_detection.json': [dict(video_id='v0', actions='rest')]
    }, 'action_detection.json', ["'actions'", 'expected a list']),
    'metadata missing domain': ({
        'metadata.json': [dict(video_id='v0', duration=1.0)]
    }, 'metadata.json', ['entry 0', "video_id='v0'", "'domain'", 'missing']),
    'metadata negative duration': ({
        'metadata.json': [dict(video_id='v0', domain='news', duration=-1)]
    }, 'metadata.json', ["'duration'", 'is -1', '>= 0']),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_malformed_annotation_is_reported(tmp_path, case):
    files, name, fragments = CASES[case]
    root = _split(tmp_path, files)
    with pytest.raises(AnnotationError) as info:
        _build(root)
    message = str(info.value)
    assert osp.join(str(root), 'annotations', name) in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_vocab_root_is_validated_too(tmp_path):
    good = _split(tmp_path / 'good', {})
    bad = _split(tmp_path / 'bad', _actions(dict(start=0, label='x')))
    with pytest.raises(AnnotationError, match='bad.*actions\\[0\\].end'):
        DATASETS.build(
            dict(
                type='VideoDataset', data_root=str(good), vocab_root=str(bad)))


def test_missing_metadata_uses_video_files(tmp_path):
    (tmp_path / 'videos').mkdir()
    for name in ('b.mp4', 'a.MKV', 'notes.txt'):
        (tmp_path / 'videos' / name).write_bytes(b'')
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' / 'action_detection.json').write_text(
        json.dumps([dict(video_id='c', actions=[])]))
    with pytest.raises(AnnotationError, match="video_id='c'"):
        _build(tmp_path)
    (tmp_path / 'annotations' / 'action_detection.json').write_text(
        json.dumps([dict(video_id='a', actions=[GOOD_ACTION])]))
    dataset = _build(tmp_path)
    assert [d['video_id'] for d in dataset] == ['a', 'b']
    assert dataset.get_data_info(0)['domain'] == 'general'
    assert dataset.get_data_info(0)['filename'].endswith('a.MKV')
    assert dataset.get_data_info(1)['tasks'] == set()


def test_missing_split_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.*does not exist'):
        _build(tmp_path / 'nowhere')


def test_captions_in_any_language_and_wordless_ones_named(tmp_path):
    captions = [
        dict(video_id='v0', captions=[
            dict(text='一个男人在跑步。', time=[0, 1]),
            dict(text='¡El niño está aquí!', time=[1, 2])]),
        dict(video_id='v1', captions=[
            dict(text='a man runs', time=[0, 1]),
            dict(text='... !', time=[1, 2])]),
    ]
    root = _split(tmp_path, {'video_captioning.json': captions})
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        dataset = _build(root)
    finally:
        logger.removeHandler(handler)
    # trained as they are: one word per Chinese character, accents kept
    words = dataset.metainfo['words']
    assert {'一', '跑', '¡', 'el', 'niño', 'está', 'aquí', 'runs'} <= set(words)
    assert dataset.get_data_info(1)['captions'][1]['text'] == '... !'
    messages = [r.getMessage() for r in records]
    assert len(messages) == 1, messages
    path = osp.join(str(root), 'annotations', 'video_captioning.json')
    assert messages[0].startswith(f'{path}: 1 caption(s) have no words')
    assert "entry 1 (video_id='v1'): captions[1] '... !'" in messages[0]
