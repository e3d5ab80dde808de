"""List the videos of a config's split that cannot be opened or decoded.

    python tools/analysis_tools/check_videos.py CONFIG [--split val]
        [--cfg-options k=v ...] [--out bad.json]

Exit status 1 when any video is unreadable, 0 otherwise.
"""
import argparse
import json
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

import hvlm.datasets  # noqa: F401  (registers datasets and transforms)
from hvlm.analysis.dataset_browser import SPLITS
from hvlm.datasets import check_videos
from hvlm.registry import DATASETS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Open and decode every video of a dataset split')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--split',
        choices=sorted(SPLITS),
        default='train',
        help='which dataloader of the config to check')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override config entries, e.g. '
        'train_dataloader.dataset.data_root=data/mine')
    parser.add_argument(
        '--out',
        help='write the unreadable videos to this JSON file as '
        '[{"filename": ..., "reason": ...}]')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'hvlm'))
    key = SPLITS[args.split]
    if key not in cfg:
        print(
            f'{args.config} has no {key}; cannot check --split '
            f'{args.split}',
            file=sys.stderr)
        return 2
    dataset = DATASETS.build(cfg[key].dataset)
    bad = check_videos(dataset, verbose=False)
    for filename, reason in bad:
        print(f'UNREADABLE {filename}: {reason}')
    print(f'{len(bad)} of {len(dataset)} videos unreadable '
          f'({args.split} split of {args.config})')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump([dict(filename=name, reason=why) for name, why in bad],
                      f,
                      indent=1)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
