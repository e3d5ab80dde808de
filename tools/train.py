"""Train a model: ``python tools/train.py CONFIG [options]``.

See ``--help`` for the options; each maps to one config change
(``hvlm.utils.cli.merge_train_args``).
"""
from mmengine.config import Config

from hvlm.utils import CheckpointLoadError, register_all_modules
from hvlm.utils.cli import (build_runner, exit_on_config_error,
                            merge_train_args, parse_train_args)
from hvlm.utils.dist import close_dist


def main(argv=None) -> None:
    args = parse_train_args(argv)
    register_all_modules(init_default_scope=False)
    # A config mistake is one line and exit code 2, before anything is built.
    with exit_on_config_error('train.py'):
        cfg = merge_train_args(Config.fromfile(args.config), args)
        runner = build_runner(cfg)
    try:
        runner.train()
    except CheckpointLoadError as err:
        # a checkpoint that is missing, unreadable or does not fit the
        # model: the message says which and why, a traceback adds nothing
        raise SystemExit(f'train.py: error: {err}') from None
    # The Runner's DDP wrapper holds the process group: drop it, then
    # close the group while Python is alive (see hvlm.utils.dist).
    del runner
    close_dist()


if __name__ == '__main__':
    main()
