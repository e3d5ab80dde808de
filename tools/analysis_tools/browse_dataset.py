"""Draw the frames a config's pipeline samples, with their annotations.

    python tools/analysis_tools/browse_dataset.py CONFIG [--split val]
        [--output-dir DIR] [--max-videos 8] [--phase pipeline|original]
        [--scale S] [--seed 0] [--cfg-options k=v ...]

One PNG per video: a row per clip, every sampled frame with its frame
index, time and action label; under the grid the video's domain, action
segments, QA pairs and captions with their times. ``--phase original``
shows the same frames as decoded, before resizing and cropping.
"""
import argparse
import os.path as osp
import sys

import numpy as np
from mmengine.config import Config, DictAction

from hvlm.analysis.dataset_browser import (PHASES, SPLITS,
                                           browse_dataset,
                                           build_split_dataset)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Draw sampled frames and annotations of a dataset split')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--split',
        choices=sorted(SPLITS),
        default='train',
        help='which dataloader of the config to browse')
    parser.add_argument(
        '--output-dir',
        help='where the images go (default: work_dirs/browse_dataset/'
        '<config name>/<split>)')
    parser.add_argument(
        '--max-videos',
        type=int,
        default=8,
        help='draw the first N videos of the split')
    parser.add_argument(
        '--phase',
        choices=PHASES,
        default='pipeline',
        help='pipeline: frames after every transform, as the model gets '
        'them; original: the same frames as decoded')
    parser.add_argument(
        '--scale',
        type=int,
        help='repeat every pixel S times (default: enough to show the '
        'short side with at least 96 pixels)')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the random transforms (sampling offsets, crops)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override config entries, e.g. '
        'val_dataloader.dataset.data_root=data/mine/validation')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        print(f'config file {args.config} does not exist', file=sys.stderr)
        return 2
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    try:
        dataset = build_split_dataset(cfg, args.split)
    except KeyError as e:
        print(f'{args.config}: {e.args[0]}', file=sys.stderr)
        return 2
    preprocessor = (cfg.get('model') or {}).get('data_preprocessor') or {}
    output_dir = args.output_dir or osp.join(
        'work_dirs', 'browse_dataset',
        osp.splitext(osp.basename(args.config))[0], args.split)
    np.random.seed(args.seed)
    result = browse_dataset(
        dataset,
        output_dir,
        max_videos=args.max_videos,
        phase=args.phase,
        mean=preprocessor.get('mean'),
        std=preprocessor.get('std'),
        scale=args.scale)
    for filename, reason in result['skipped']:
        print(f'SKIPPED {filename}: {reason}')
    print(f'wrote {len(result["written"])} images ({args.phase}, '
          f'{args.split} split) to {output_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
