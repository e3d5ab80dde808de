"""Print the config a training run would use, without running it.

    python tools/misc/print_config.py CONFIG [--cfg-options k=v ...]
        [--save-path resolved.py]

The ``_base_`` files are merged in, then ``--cfg-options`` and the defaults
of ``tools/train.py`` are applied by the same code train.py runs
(:func:`hvlm.utils.cli.merge_train_args`), validation and test datasets get
the training split's vocabularies as in the runner, and the result is
checked (:func:`hvlm.utils.config.check_config`): an unknown ``type`` or
argument fails here, naming its key, before any data is read. A
``--cfg-options`` key that does not exist in the config is added, as
mmengine does, with a warning that suggests the closest existing key.
"""
import argparse
import copy
import difflib
import os.path as osp
import sys
from typing import Iterator

from mmengine.config import Config, DictAction

from hvlm.utils import register_all_modules
from hvlm.utils.cli import merge_train_args, parse_train_args
from hvlm.utils.config import ConfigError, check_config, share_vocabulary


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Print the fully resolved config of a training run')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override config keys as tools/train.py does, e.g. '
        'train_cfg.max_epochs=3 model.backbone.depths="(1,1)"')
    parser.add_argument(
        '--save-path',
        help='also write the resolved config to this file (.py, .json or '
        '.yaml)')
    return parser.parse_args(argv)


def new_option_keys(cfg: Config, options: dict) -> Iterator[str]:
    """A warning for every ``--cfg-options`` key that names something the
    config does not have (mmengine silently adds it)."""
    tree = cfg.to_dict()
    for key in options:
        node, walked = tree, []
        for part in key.split('.'):
            if isinstance(node, (list, tuple)) and part.isdigit():
                if int(part) >= len(node):
                    break  # merge_from_dict reports the index itself
                node = node[int(part)]
            elif isinstance(node, dict):
                if part not in node:
                    close = difflib.get_close_matches(
                        part, [str(k) for k in node], n=1)
                    hint = f"; did you mean '{close[0]}'?" if close else ''
                    where = '.'.join(walked) or 'the config'
                    yield (f'--cfg-options {key}: {where} has no key '
                           f'{part!r}, so it is added{hint}')
                    break
                node = node[part]
            else:
                break
            walked.append(part)


def resolve_config(config: str, cfg_options: dict) -> Config:
    """The config ``tools/train.py CONFIG --cfg-options ...`` would run.

    Raises:
        FileNotFoundError: ``config`` does not exist.
        ConfigError: a ``--cfg-options`` entry cannot be merged (named), or
            the result names an unknown type or argument (key named).
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file {config} does not exist')
    cfg = Config.fromfile(config)
    original = copy.deepcopy(cfg)
    args = parse_train_args([config])
    args.cfg_options = cfg_options
    try:
        merge_train_args(cfg, args)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        # Find the entry at fault: merge each one alone into a fresh copy.
        for key, value in cfg_options.items():
            try:
                copy.deepcopy(original).merge_from_dict({key: value})
            except (KeyError, TypeError, ValueError, IndexError) as e:
                reason = e.args[0] if e.args else type(e).__name__
                raise ConfigError(f'--cfg-options {key}={value!r} cannot be '
                                  f'merged into {config}: {reason}') from e
        raise ConfigError(f'--cfg-options cannot be merged into {config}: '
                          f'{error}') from error
    share_vocabulary(cfg)
    register_all_modules(init_default_scope=False)
    check_config(cfg)
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if osp.isfile(args.config):
            for warning in new_option_keys(
                    Config.fromfile(args.config), args.cfg_options):
                print(f'WARNING: {warning}', file=sys.stderr)
        cfg = resolve_config(args.config, args.cfg_options)
    except (FileNotFoundError, ConfigError) as e:
        print(f'print_config.py: {e}', file=sys.stderr)
        return 2
    print(cfg.pretty_text)
    if args.save_path:
        cfg.dump(args.save_path)
        print(f'saved the config to {args.save_path}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
