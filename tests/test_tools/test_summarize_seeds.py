"""summarize_seeds: mean and sample std over runs, read from test logs."""
import importlib.util
import os

import pytest

from .conftest import REPO

LINE = ('2026/12/06 11:00:00 - mmengine - INFO - Epoch(test) [25/25]    '
        'recog/top1: {t1}  recog/top5: {t5}  recog/mean_class_acc: 0.5000  '
        'detection/mAP@0.5: 0.2500  '
        'data_time: 0.0100  time: 0.2000\n')


def test_summary_over_three_seeds(tmp_path, capsys):
    dirs = []
    for i, (t1, t5) in enumerate([(0.80, 0.95), (0.84, 0.97), (0.86, 0.99)]):
        d = tmp_path / f'seed{i}' / '20261206_110000'
        os.makedirs(d)
        (d / '20261206_110000.log').write_text(
            'Epoch(test) [1/25]  eta: 0:01:00\n' +
            LINE.format(t1=f'{t1:.4f}', t5=f'{t5:.4f}'))
        dirs.append(str(tmp_path / f'seed{i}'))
    spec = importlib.util.spec_from_file_location(
        'summarize_seeds',
        REPO / 'tools' / 'analysis_tools' / 'summarize_seeds.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    from hvlm.analysis import read_test_metrics, summarize_runs
    runs = [read_test_metrics(d) for d in dirs]
    assert runs[0] == {'recog/top1': 0.8, 'recog/top5': 0.95,
                       'recog/mean_class_acc': 0.5}
    summary = summarize_runs(runs)
    # mean 0.8333..., sample std sqrt(((-.0333)^2+(.0067)^2+(.0267)^2)/2)
    assert summary['recog/top1']['mean'] == pytest.approx(2.5 / 3)
    assert summary['recog/top1']['std'] == pytest.approx(0.030550504)
    assert summary['recog/mean_class_acc']['std'] == 0.0
    assert tool.main(dirs) == 0
    out = capsys.readouterr().out
    assert 'recog/top1' in out and '83.33' in out and '3.06' in out
    assert tool.main([*dirs, '--scale', '1']) == 0
    out = capsys.readouterr().out
    assert '0.83' in out and '83.33' not in out
    # every metric with prefix '': the mAP@IoU names kept whole
    assert read_test_metrics(dirs[0], '')['detection/mAP@0.5'] == 0.25
    with pytest.raises(FileNotFoundError, match='Epoch\\(test\\)'):
        read_test_metrics(str(tmp_path / 'seed0' / 'missing'))
