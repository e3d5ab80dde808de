"""Cache a config's frozen stem encoder's patch tokens for one split.

    python tools/misc/extract_features.py CONFIG --split train --out DIR \
        [--cfg-options model.backbone.stem.pretrained=/data/clip ...]
    torchrun --nproc_per_node 4 tools/misc/extract_features.py CONFIG ...

Frames are sampled with the config's test pipeline (deterministic). A
killed run started again with the same arguments continues where it
stopped. Train from the cache with the pipeline ``[LoadCachedFeatures
(cache_dir=DIR), PackVideoInputs]`` and
``model.data_preprocessor.cached_features=True`` (docs/PRETRAINED.md).
"""
import argparse
import os
import sys

from mmengine.config import Config, DictAction

from hvlm.apis.feature_extraction import extract_features
from hvlm.utils.dist import close_dist, init_cpu_dist


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Encode a split once with the frozen stem encoder')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--split', default='train',
                        choices=('train', 'val', 'test'))
    parser.add_argument('--out', required=True, help='cache directory')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='override config keys')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    distributed = 'RANK' in os.environ and init_cpu_dist('pytorch')
    index = extract_features(cfg, args.split, args.out,
                             progress=not args.no_progress)
    if index:
        print(f'\nindex written: {index}')
    if distributed:
        close_dist()
    return 0


if __name__ == '__main__':
    sys.exit(main())
