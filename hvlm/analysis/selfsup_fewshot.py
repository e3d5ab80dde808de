"""Few-label fine-tuning from a SimCLR checkpoint against random
initialisation, and the recipe's ablations, over seeds (issue 16, point 7).

Each cell (arm, seed) is one ``tools/train.py`` run of the fine-tuning
config with ``--seed seed`` and ``train_dataloader.dataset.shot_seed=seed``
(so both arms of a seed see the same labelled images), then
``tools/test.py`` on its last checkpoint with and without ``--tta``.
"""
import math
import os.path as osp
import statistics
from typing import Dict, List, Optional, Sequence


# arm -> options added to the fine-tuning config; '{ssl}' is the SimCLR
# checkpoint
ARMS = {
    'random': [],
    'simclr': ['model.ssl_checkpoint={ssl}'],
    'simclr_no_ema': ['model.ssl_checkpoint={ssl}', 'custom_hooks=[]'],
    'simclr_no_mix': [
        'model.ssl_checkpoint={ssl}',
        'model.data_preprocessor.batch_augments.1.probs=[0.0,0.0]'
    ],
    'simclr_ce': [
        'model.ssl_checkpoint={ssl}', 'model.head.loss.focal_weight=0.0',
        'model.head.loss.ce_weight=1.0', 'model.head.loss.label_smoothing=0.0'
    ],
}


def plan(arms: Sequence[str], seeds: Sequence[int], ssl_checkpoint: str,
         work_dir: str, config: str,
         cfg_options: Sequence[str] = ()) -> List[dict]:
    """One dict per (arm, seed): ``arm``, ``seed``, ``work_dir``, the
    ``train`` argv of tools/train.py and ``test`` (argv without the
    checkpoint, which is the run's last one, known after training)."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f'unknown arms {unknown}; known: {list(ARMS)}')
    runs = []
    for arm in arms:
        opts = [o.format(ssl=ssl_checkpoint) for o in ARMS[arm]]
        for seed in seeds:
            wd = osp.join(work_dir, f'{arm}_{seed}')
            train = [
                config, '--seed', str(seed), '--work-dir', wd,
                '--cfg-options', f'train_dataloader.dataset.shot_seed={seed}',
                *opts, *cfg_options
            ]
            runs.append(dict(arm=arm, seed=seed, work_dir=wd, train=train,
                             cfg_options=list(cfg_options)))
    return runs


def eval_argv(run: dict, checkpoint: str, tta: bool) -> List[str]:
    """tools/test.py argv of ``run``'s ``checkpoint`` (test split)."""
    out = osp.join(run['work_dir'], 'test_tta' if tta else 'test')
    argv = [run['train'][0], checkpoint, '--work-dir', out]
    if tta:
        argv.append('--tta')
    if run['cfg_options']:
        argv += ['--cfg-options', *run['cfg_options']]
    return argv


def gain(treated: Dict[int, float],
         baseline: Dict[int, float]) -> Optional[Dict[str, float]]:
    """Mean gain of ``treated`` over ``baseline`` on their common seeds
    (``{seed: accuracy}``) and two standard errors of it: ``se_paired``,
    the sample std of the per-seed differences over sqrt(n) (same seed,
    same labelled images), and ``se_unpaired``, sqrt(s_t^2/n + s_b^2/n).
    None with fewer than two common seeds."""
    seeds = sorted(set(treated) & set(baseline))
    n = len(seeds)
    if n < 2:
        return None
    diffs = [treated[s] - baseline[s] for s in seeds]
    t = [treated[s] for s in seeds]
    b = [baseline[s] for s in seeds]
    return dict(
        gain=statistics.fmean(diffs), n=n,
        se_paired=statistics.stdev(diffs) / math.sqrt(n),
        se_unpaired=math.sqrt((statistics.variance(t) +
                               statistics.variance(b)) / n))
