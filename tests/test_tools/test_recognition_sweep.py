"""The few-shot sweep: one train + test command pair per method, K and
seed, with exactly the options of the protocol; finished cells are not run
again; the table is mean +- sample std over the seeds. Every demo config it
names builds its model on a tiny CLIP."""
import os
import os.path as osp
import sys

import pytest

from hvlm.analysis.recognition_sweep import (METHODS, execute, plan, table,
                                             write_summary)
from hvlm.registry import MODELS
from .conftest import REPO
from .test_recognition_configs import load

CONFIG_DIR = str(REPO / 'configs' / 'recognition')


def test_every_demo_method_builds(tiny_clip_dir):
    for method in METHODS:
        cfg = load(osp.join(CONFIG_DIR, f'{method}_hvlm-demo_8shot.py'))
        if method == 'vilt':  # the tiny CLIP has 2 layers a tower
            cfg.model.prompt_learner.prompt_depth = 2
        model = MODELS.build(dict(cfg.model, pretrained=tiny_clip_dir))
        trainable = [n for n, p in model.named_parameters()
                     if p.requires_grad]
        assert trainable, method
        # the CLIP towers stay frozen whatever the method
        assert not any(n.startswith(('image_encoder.', 'text_encoder.'))
                       for n in trainable), (method, trainable[:3])
    cfg = load(osp.join(CONFIG_DIR, 'zero_shot_hvlm-demo.py'))
    assert cfg.model.prompt_learner is None


def test_plan_and_resume(tmp_path):
    runs = plan(['video_coop', 'stt'], [2, 8], [0, 1], '/clip',
                str(tmp_path), config_dir=CONFIG_DIR)
    assert runs[0]['method'] == 'zero_shot' and runs[0]['train_dir'] is None
    cells = [(r['method'], r['shot'], r['seed']) for r in runs[1:]]
    assert cells == [(m, k, s) for m in ('video_coop', 'stt')
                     for k in (2, 8) for s in (0, 1)]
    stt = runs[-1]
    assert stt['options'][:4] == ['model.pretrained=/clip', 'K_train=8',
                                  'few_shot_seed=1', 'randomness.seed=1']
    ucf = plan(list(METHODS), [16], [0], '/clip', str(tmp_path),
               dataset='ucf101', config_dir=CONFIG_DIR)
    assert [osp.basename(r['config']) for r in ucf] == [
        'zero_shot_ucf101.py', 'video_coop_ucf101_8shot.py',
        'dual_coop_ucf101_16shot.py', 'vidop_ucf101_16shot.py',
        'vilt_ucf101_16shot.py', 'vita_ucf101_16shot.py',
        'stt_ucf101_16shot.py', 'linear_probe_ucf101_16shot.py']
    assert len(ucf) == 1 + len(METHODS)
    with pytest.raises(FileNotFoundError, match='known methods'):
        plan(['coop'], [2], [0], '/clip', str(tmp_path),
             config_dir=CONFIG_DIR)

    calls = []
    top1 = {('video_coop', 2): [0.5, 0.7], ('video_coop', 8): [0.8, 0.9],
            ('stt', 2): [0.25, 0.25], ('stt', 8): [0.6, None]}

    def fake_call(cmd):
        """tools/train.py writes a checkpoint, tools/test.py a test log
        with the metric of the cell (None: the test fails)."""
        calls.append(cmd)
        work = cmd[cmd.index('--work-dir') + 1]
        os.makedirs(work, exist_ok=True)
        if cmd[1] == 'tools/train.py':
            open(osp.join(work, 'best_recog_top1_epoch_3.pth'), 'w').close()
            return 0
        run = next(r for r in runs if r['test_dir'] == work)
        value = 0.3 if run['method'] == 'zero_shot' else \
            top1[run['method'], run['shot']][run['seed']]
        if value is None:
            return 1
        with open(osp.join(work, 'x.log'), 'w') as f:
            f.write(f'Epoch(test) [9/9]    recog/top1: {value:.4f}  '
                    f'recog/mean_class_acc: {value:.4f}\n')
        return 0

    log = []
    results = execute(runs, call=fake_call, log=log.append)
    # zero-shot: one test without a checkpoint; each cell: train then test
    # of its best checkpoint
    assert calls[0][1:4] == ['tools/test.py', runs[0]['config'], 'none']
    assert calls[1][1] == 'tools/train.py'
    assert calls[2][1] == 'tools/test.py'
    assert calls[2][3].endswith('best_recog_top1_epoch_3.pth')
    assert len(calls) == 1 + 2 * 8
    assert sum('FAILED' in line for line in log) == 1
    text = table(results)
    assert '| zero_shot | 30.0 | 30.0 |' in text
    # video_coop K=2: mean 60, sample std 14.14; stt K=8: one run of two
    assert '| video_coop | 60.0 ± 14.1 | 85.0 ± 7.1 |' in text
    assert '| stt | 25.0 ± 0.0 | 60.0 ± 0.0 (1 runs) |' in text
    write_summary(results, str(tmp_path / 'summary.json'))

    # a second sweep runs only the failed cell again
    calls.clear()
    execute(runs, call=fake_call, log=log.append)
    assert [c[1] for c in calls] == ['tools/train.py', 'tools/test.py']
    assert calls[0][calls[0].index('--work-dir') + 1] == stt['train_dir']
    assert calls[0][0] == sys.executable
