"""Command-line options of ``tools/train.py`` and ``tools/test.py``.

Each flag maps to one change of the config; :func:`merge_train_args` and
:func:`merge_test_args` are pure functions of ``(cfg, args)`` so they are
tested without starting a run.
"""
import argparse
import os
import os.path as osp
import sys
import warnings
from contextlib import contextmanager
from typing import Iterator

from mmengine.config import Config, DictAction

from .config import ConfigError, check_config
from .recognition_options import apply_recognition_options
from .cpu_amp import cpu_amp_advice

__all__ = [
    'CfgOptionsAction', 'parse_train_args', 'merge_train_args',
    'parse_test_args', 'merge_test_args', 'build_runner',
    'exit_on_config_error'
]

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` that rejects malformed options while the
    command line is parsed.

    mmengine splits ``KEY=VALUE`` without checking it, so ``KEY`` alone
    fails with "not enough values to unpack" and ``KEY=`` (an empty string)
    only fails once the Runner uses it, after the datasets are built. Here
    both are argparse errors naming the option (exit code 2).
    """

    def __call__(self, parser, namespace, values, option_string=None):
        for option in values or ():
            key, sep, value = option.partition('=')
            if not sep:
                parser.error(f'{option_string} {option!r}: expected '
                             'KEY=VALUE, e.g. train_cfg.max_epochs=12')
            if not key or any(not part for part in key.split('.')):
                parser.error(f'{option_string} {option!r}: the key is '
                             'empty or has an empty part; expected a dotted '
                             'config path such as train_cfg.max_epochs')
            if not value.strip('\'" '):
                parser.error(f'{option_string} {option!r}: the value is '
                             f'empty; expected {key}=VALUE (a number, '
                             'string, None, or a list/tuple like "(1,1)")')
            try:
                self._parse_iterable(value)
            except AssertionError as err:  # unbalanced brackets
                parser.error(f'{option_string} {option!r}: cannot parse the '
                             f'value ({err})')
        super().__call__(parser, namespace, values, option_string)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--work-dir',
        help='where logs and checkpoints go (default: '
        'work_dirs/<config name>)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        help='override config keys, e.g. '
        'train_dataloader.dataset.data_root=DIR/training '
        'model.backbone.depths="(1,1)"')
    parser.add_argument(
        '--launcher',
        choices=LAUNCHERS,
        default='none',
        help='how the processes were started (tools/dist_*.sh: pytorch)')
    # torchrun passes --local-rank to old scripts; accept both spellings
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_train_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train an hvlm model')
    _add_common(parser)
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CHECKPOINT, or without a value from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision: float16 with loss scaling on GPU; bfloat16 '
        'autocast on CPU, unless this CPU runs bfloat16 more than 2x slower '
        'than float32 (then float32, with a warning)')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not validate during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by total batch size / '
        'auto_scale_lr.base_batch_size')
    parser.add_argument('--seed', type=int, default=None, help='random seed')
    parser.add_argument(
        '--diff-rank-seed',
        action='store_true',
        help='give every rank a different seed')
    parser.add_argument(
        '--deterministic',
        action='store_true',
        help='use deterministic algorithms (slower)')
    return parser.parse_args(argv)


def parse_test_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Evaluate an hvlm checkpoint on the test split')
    _add_common(parser)
    parser.add_argument(
        'checkpoint',
        help="checkpoint file, or 'none' for a model complete without one "
        '(zero-shot CLIPRecognizer: every weight comes from the CLIP '
        'directory)')
    parser.add_argument(
        '--out',
        help='dump every prediction to this pickle file (.pkl) as well')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='test under mixed precision (on CPU only where bfloat16 is '
        'not slower than float32, as for training)')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation: wrap the model in the config\'s '
        'tta_model (as use_tta=True in the config does)')
    return parser.parse_args(argv)


def _set_env_and_work_dir(cfg: Config, args: argparse.Namespace) -> None:
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])


def merge_train_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the train flags to ``cfg`` (in place) and return it."""
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    apply_recognition_options(cfg)
    _set_env_and_work_dir(cfg, args)

    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
        checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
        if checkpoint is not None:
            checkpoint['save_best'] = None

    if args.amp:
        # on a CPU that runs bfloat16 slowly (hvlm.utils.cpu_amp) only a
        # float16 recipe keeps its autocast; evaluation would autocast to
        # bfloat16, so it stays in float32
        bf16_slow = _cpu_bf16_slow()
        dtype = str(cfg.optim_wrapper.get('dtype') or 'bfloat16')
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in ('AmpOptimWrapper', 'OptimWrapper'):
            raise ConfigError(
                f'--amp needs optim_wrapper.type to be OptimWrapper or '
                f'AmpOptimWrapper, but the config has {optim_wrapper!r}')
        if not (bf16_slow and dtype.endswith('bfloat16')):
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        if not bf16_slow:
            if cfg.get('val_cfg') is not None:
                cfg.val_cfg.fp16 = True
            if cfg.get('test_cfg') is not None:
                cfg.test_cfg.fp16 = True

    if args.auto_scale_lr:
        if not cfg.get('auto_scale_lr', {}).get('base_batch_size'):
            raise ConfigError(
                '--auto-scale-lr needs auto_scale_lr.base_batch_size in the '
                'config: the total batch size the learning rate was tuned '
                'for')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        # the recognition option continue_from names the run to resume
        # (the original's --continue-from); otherwise the work dir's latest
        cfg.load_from = cfg.get('continue_from') or None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    randomness = dict(cfg.get('randomness') or {})
    if args.seed is not None:
        randomness['seed'] = args.seed
    if args.deterministic:
        randomness['deterministic'] = True
    if args.diff_rank_seed:
        randomness['diff_rank_seed'] = True
    cfg.randomness = randomness
    return cfg


def merge_test_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the test flags to ``cfg`` (in place) and return it."""
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    apply_recognition_options(cfg)
    _set_env_and_work_dir(cfg, args)
    cfg.load_from = None if args.checkpoint.lower() == 'none' else \
        args.checkpoint
    cfg.resume = False
    if args.amp and cfg.get('test_cfg') is not None and not _cpu_bf16_slow():
        cfg.test_cfg.fp16 = True
    if getattr(args, 'tta', False) or cfg.get('use_tta'):
        if not cfg.get('tta_model'):
            raise ConfigError('--tta / use_tta=True needs tta_model in the '
                              'config, e.g. tta_model=dict(type='
                              "'ImageClassifierTTA')")
        cfg.model = dict(cfg.tta_model, module=cfg.model)
        # a checkpoint written under EMAHook holds the EMA weights as its
        # state_dict already; the hook would average a copy of the wrapper
        cfg.custom_hooks = [
            h for h in cfg.get('custom_hooks') or []
            if h.get('type') != 'EMAHook'
        ]
    if args.out:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ConfigError(f'--out {args.out}: the file must end in .pkl')
        evaluator = cfg.test_evaluator
        evaluators = list(evaluator) if isinstance(evaluator,
                                                   (list, tuple)) else [
                                                       evaluator
                                                   ]
        evaluators.append(dict(type='DumpResults', out_file_path=args.out))
        cfg.test_evaluator = evaluators
    return cfg


def _cpu_bf16_slow() -> bool:
    """True, with a warning that says why and what to use instead, on a CPU
    where bfloat16 autocast is slower than float32 by more than
    :data:`hvlm.utils.cpu_amp.SLOWDOWN_LIMIT`."""
    advice = cpu_amp_advice()
    if advice:
        warnings.warn(advice, stacklevel=3)
    return bool(advice)


def build_runner(cfg: Config):
    """Build the runner the config asks for (``runner_type``), as
    MMAction2's tools do."""
    from hvlm.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        check_config(cfg)  # HVLMRunner.from_cfg does it otherwise
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


@contextmanager
def exit_on_config_error(prog: str) -> Iterator[None]:
    """Turn a :class:`ConfigError` into ``PROG: error: MESSAGE`` on stderr
    and exit code 2, as argparse does for a bad flag: the message already
    names the key at fault, and a traceback through mmengine would bury it.
    """
    try:
        yield
    except ConfigError as err:
        print(f'{prog}: error: {err}', file=sys.stderr)
        sys.exit(2)
