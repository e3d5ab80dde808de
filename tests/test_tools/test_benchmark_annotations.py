"""The annotation benchmark writes valid files and times what it says."""
import json
import os
from collections import Counter

from hvlm.analysis.annotation_benchmark import (benchmark_annotations,
                                                format_annotation_benchmark,
                                                write_synthetic_split)
from hvlm.datasets import annotations
from hvlm.registry import DATASETS

from .conftest import REPO, run_tool

CONFIG = str(REPO / 'configs' / 'hier_general.py')


def test_synthetic_split_is_a_valid_dataset_of_the_stated_density(tmp_path):
    sizes = write_synthetic_split(str(tmp_path), 300, seed=1)
    assert sorted(sizes) == sorted(
        ['metadata.json'] + [name for name, _ in annotations.TASK_FILES.values()])
    assert 800 < sum(sizes.values()) / 300 < 1500  # bytes per video
    dataset = DATASETS.build(dict(type='VideoDataset', data_root=str(tmp_path)))
    assert len(dataset) == 300
    info = dataset.get_data_info(0)
    assert info['tasks'] == {'action_detection', 'video_qa',
                             'video_captioning'}
    assert all(a['label_id'] >= 0 for a in info['actions'])


def test_baseline_parses_once_and_the_build_is_timed_both_ways(
        tmp_path, monkeypatch):
    reads = Counter()
    load = annotations.load_json_list

    def counting(path):
        reads[os.path.relpath(path, tmp_path)] += 1
        return load(path)

    monkeypatch.setattr(annotations, 'load_json_list', counting)
    result = benchmark_annotations(str(tmp_path), 40, config=CONFIG,
                                   without_cache=True)
    assert (result['num_videos'], result['val_videos']) == (40, 4)
    assert result['ratio'] == result['build_s'] / result['parse_once_s']
    assert result['ratio_uncached'] == (result['build_uncached_s'] /
                                        result['parse_once_s'])
    # training: baseline 1 + cached build 1 + uncached build 2 (the
    # training set's vocabularies and videos, read once, and the validation
    # set's vocabularies); validation: 1 + 1 + 1
    train = {f: n for f, n in reads.items() if f.startswith('training')}
    val = {f: n for f, n in reads.items() if f.startswith('validation')}
    assert len(train) == len(val) == 4
    assert set(train.values()) == {4} and set(val.values()) == {3}
    table = format_annotation_benchmark(result)
    assert 'parse every file once (baseline)' in table
    assert f"x{result['ratio']:.2f}" in table


def test_tool_prints_the_table_and_leaves_no_files(tmp_path):
    out = tmp_path / 'out.json'
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    proc = run_tool('analysis_tools/benchmark_annotations.py', '--num-videos',
                    '30', '--tmp-dir', scratch, '--out-json', out)
    assert 'build train + val datasets' in proc.stdout
    assert json.loads(out.read_text())['num_videos'] == 30
    assert list(scratch.iterdir()) == []
    proc = run_tool('analysis_tools/benchmark_annotations.py', '--num-videos',
                    '0', check=False)
    assert proc.returncode == 2 and '--num-videos 0' in proc.stderr
