"""Each annotation file is parsed once per process, and re-read when edited."""
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from mmengine.config import Config

from hvlm.datasets import annotations
from hvlm.datasets.annotations import (clear_annotation_cache, parse_metadata,
                                       parse_task_file)

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / 'tests' / 'data' / 'configs' / 'tiny_sports.py')


@pytest.fixture
def reads(monkeypatch):
    """Counter of the files whose JSON is loaded, from an empty cache."""
    clear_annotation_cache()
    counts = Counter()
    load = annotations.load_json_list

    def counting(path):
        counts[os.path.realpath(path)] += 1
        return load(path)

    monkeypatch.setattr(annotations, 'load_json_list', counting)
    yield counts
    clear_annotation_cache()


def test_runner_datasets_and_qa_prior_read_each_file_once(
        tiny_demo_root, tmp_path, reads):
    from hvlm.engine.runner import HVLMRunner
    from hvlm.evaluation.metrics.video_qa_metric import \
        training_answer_counts
    cfg = Config.fromfile(TINY)
    for key, split in (('train_dataloader', 'training'),
                       ('val_dataloader', 'validation'),
                       ('test_dataloader', 'test')):
        cfg[key].dataset.data_root = f'{tiny_demo_root}/{split}'
    cfg.work_dir = str(tmp_path / 'work')
    runner = HVLMRunner.from_cfg(cfg)
    # as Runner.train builds them: from the configs after share_vocabulary
    train = runner.build_dataloader(runner._train_dataloader).dataset
    val = runner.build_dataloader(runner._val_dataloader).dataset
    for epoch in range(2):  # VideoQAMetric's prior, at every validation
        training_answer_counts(f'{tiny_demo_root}/training')

    assert len(train) and len(val)
    expected = {
        os.path.realpath(f'{tiny_demo_root}/{split}/annotations/{name}')
        for split in ('training', 'validation')
        for name in ('metadata.json', 'action_detection.json',
                     'video_qa.json', 'video_captioning.json')
    }
    assert set(reads) == expected
    assert set(reads.values()) == {1}, reads


def _write(path, entries):
    path.write_text(json.dumps(entries))


def test_an_edited_file_is_parsed_again(tmp_path, reads):
    path = tmp_path / 'video_qa.json'
    _write(path, [dict(video_id='v0', qa_pairs=[dict(question='q',
                                                     answer='a')])])
    first = parse_task_file(str(path), 'video_qa', {'v0'})
    assert parse_task_file(str(path), 'video_qa', {'v0'}) == first
    assert sum(reads.values()) == 1
    # the same size and a new mtime: parsed again, not served stale
    _write(path, [dict(video_id='v0', qa_pairs=[dict(question='q',
                                                     answer='b')])])
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = parse_task_file(str(path), 'video_qa', {'v0'})
    assert again['v0'][0]['answer'] == 'b'
    assert sum(reads.values()) == 2


def test_callers_get_copies_they_may_change(tmp_path, reads):
    path = tmp_path / 'metadata.json'
    _write(path, [dict(video_id='v0', domain='news', duration=4.0)])
    first = parse_metadata(str(path))
    first['v0']['domain'] = 'changed'
    first['v9'] = {}
    second = parse_metadata(str(path))
    assert second == {'v0': dict(domain='news', duration=4.0, fps=None,
                                 width=None, height=None)}
    second['v0']['duration'] = -1.0
    assert parse_metadata(str(path))['v0']['duration'] == 4.0
    assert sum(reads.values()) == 1


def test_known_ids_are_checked_on_every_call(tmp_path, reads):
    path = tmp_path / 'action_detection.json'
    _write(path, [dict(video_id='v0', actions=[]),
                  dict(video_id='v1', actions=[])])
    assert list(parse_task_file(str(path), 'action_detection',
                                {'v0', 'v1'})) == ['v0', 'v1']
    with pytest.raises(annotations.AnnotationError,
                       match=r"entry 1 \(video_id='v1'\): field 'video_id'"):
        parse_task_file(str(path), 'action_detection', {'v0'})
    assert sum(reads.values()) == 1


def test_cache_off_and_size_limit(tmp_path, reads, monkeypatch):
    path = tmp_path / 'metadata.json'
    _write(path, [dict(video_id='v0', domain='news', duration=4.0)])
    parse_metadata(str(path), cache=False)
    parse_metadata(str(path), cache=False)
    assert sum(reads.values()) == 2
    monkeypatch.setattr(annotations._CACHE, 'max_bytes', 10)  # too small
    parse_metadata(str(path))
    parse_metadata(str(path))
    assert sum(reads.values()) == 4


def test_vocabularies_follow_edits_and_explicit_metainfo_stays_local(
        tiny_demo_root, tmp_path, reads):
    import shutil

    from hvlm.registry import DATASETS
    root = tmp_path / 'demo'
    shutil.copytree(tiny_demo_root, root)

    def val(**kwargs):
        return DATASETS.build(
            dict(type='VideoDataset', data_root=str(root / 'validation'),
                 vocab_root='training', test_mode=True, **kwargs))

    classes = val().metainfo['classes']
    assert val(metainfo=dict(classes=['only'])).metainfo['classes'] == (
        'only', )
    assert val().metainfo['classes'] == classes
    assert reads[os.path.realpath(
        root / 'training' / 'annotations' / 'action_detection.json')] == 1

    path = root / 'training' / 'annotations' / 'action_detection.json'
    entries = json.loads(path.read_text())
    entries[0]['actions'][0]['label'] = 'zz_new_label'
    path.write_text(json.dumps(entries))
    assert 'zz_new_label' in val().metainfo['classes']
