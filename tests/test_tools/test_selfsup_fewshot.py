"""The few-label sweep of issue 16: its commands (dry run) and the gain
with its standard errors, against numpy."""
import importlib.util

import numpy as np
import pytest

from hvlm.analysis.selfsup_fewshot import gain, plan, eval_argv
from .conftest import REPO


def test_plan_pairs_seeds_and_shots_and_lists_commands(capsys):
    runs = plan(['random', 'simclr_no_ema'], [0, 3], 'ssl.pth', 'wd',
                'cfg.py', ['a=1'])
    assert [(r['arm'], r['seed']) for r in runs] == [
        ('random', 0), ('random', 3), ('simclr_no_ema', 0),
        ('simclr_no_ema', 3)]
    train = runs[3]['train']
    # the seed is both the run's seed and the labelled images' draw
    assert train[:5] == ['cfg.py', '--seed', '3', '--work-dir',
                         'wd/simclr_no_ema_3']
    assert 'train_dataloader.dataset.shot_seed=3' in train
    assert 'model.ssl_checkpoint=ssl.pth' in train
    assert 'custom_hooks=[]' in train and train[-1] == 'a=1'
    assert not any('ssl_checkpoint' in o for o in runs[0]['train'])
    assert eval_argv(runs[0], 'c.pth', True) == [
        'cfg.py', 'c.pth', '--work-dir', 'wd/random_0/test_tta', '--tta',
        '--cfg-options', 'a=1']
    with pytest.raises(ValueError, match='no_such_arm'):
        plan(['no_such_arm'], [0], 'x', 'wd', 'cfg.py')

    spec = importlib.util.spec_from_file_location(
        'hvlm_tool_selfsup_fewshot',
        REPO / 'tools' / 'analysis_tools' / 'selfsup_fewshot.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(['--ssl-checkpoint', 'ssl.pth', '--arms', 'simclr_ce',
                      '--seeds', '1', '--dry-run']) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and out[0].startswith('python tools/train.py')
    assert 'model.head.loss.focal_weight=0.0' in out[0]
    assert out[2].endswith('--tta')


def test_gain_and_standard_errors_against_numpy():
    treated = {0: 0.61, 1: 0.55, 2: 0.70, 5: 0.9}  # seed 5 has no pair
    base = {0: 0.40, 1: 0.42, 2: 0.38}
    g = gain(treated, base)
    t, b = np.array([0.61, 0.55, 0.70]), np.array([0.40, 0.42, 0.38])
    d = t - b
    assert g['n'] == 3
    np.testing.assert_allclose(g['gain'], d.mean())
    np.testing.assert_allclose(g['se_paired'], d.std(ddof=1) / np.sqrt(3))
    np.testing.assert_allclose(
        g['se_unpaired'],
        np.sqrt(t.var(ddof=1) / 3 + b.var(ddof=1) / 3))
    assert gain({0: 0.5}, {0: 0.4}) is None
