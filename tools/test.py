"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT``.

See ``--help`` for the options (``hvlm.utils.cli.merge_test_args``).
"""
from mmengine.config import Config

from hvlm.utils import register_all_modules
from hvlm.utils.cli import (build_runner, merge_test_args,
                            parse_test_args)
from hvlm.utils.dist import close_dist


def main(argv=None) -> None:
    args = parse_test_args(argv)
    register_all_modules(init_default_scope=False)
    cfg = merge_test_args(Config.fromfile(args.config), args)
    build_runner(cfg).test()
    close_dist()  # see hvlm.utils.dist: exiting with the group alive can abort


if __name__ == '__main__':
    main()
