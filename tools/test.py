"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT``.

See ``--help`` for the options (``hvlm.utils.cli.merge_test_args``).
"""
from mmengine.config import Config

from hvlm.utils import CheckpointLoadError, register_all_modules
from hvlm.utils.cli import (build_runner, exit_on_config_error,
                            merge_test_args, parse_test_args)
from hvlm.utils.dist import close_dist


def main(argv=None) -> None:
    args = parse_test_args(argv)
    register_all_modules(init_default_scope=False)
    # A config mistake is one line and exit code 2, before anything is built.
    with exit_on_config_error('test.py'):
        cfg = merge_test_args(Config.fromfile(args.config), args)
        runner = build_runner(cfg)
    try:
        runner.test()
    except CheckpointLoadError as err:
        # a checkpoint that is missing, unreadable or does not fit the
        # model: the message says which and why, a traceback adds nothing
        raise SystemExit(f'test.py: error: {err}') from None
    # The Runner's DDP wrapper holds the process group: drop it, then
    # close the group while Python is alive (see hvlm.utils.dist).
    del runner
    close_dist()


if __name__ == '__main__':
    main()
