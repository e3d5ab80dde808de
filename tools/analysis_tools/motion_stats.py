"""How fast a config's clips move, as the adaptive token merger sees it.

    python tools/analysis_tools/motion_stats.py CONFIG [--split val]
        [--max-videos N] [--batch-size B] [--cfg-options k=v ...]
        [--out-json FILE]

For every clip of the split (through the split's own pipeline and the
model's data preprocessor), the speed of its fastest token in patches per
frame, computed by the merger's motion cue (``frame_cues``), and the same
for a static copy of the clip (its first frame repeated: what the flow
reports for a clip that does not move). Prints quantiles of both and the
share of clips under ``motion.min_motion``, the floor below which the
merger scales a clip's motion down instead of up to 1. A good floor sits
above the static copies and below most recorded clips. Needs a config
whose ``model.backbone.merger`` has the motion cue, e.g.

    python tools/analysis_tools/motion_stats.py \\
        configs/token_merging/hier_sports_adaptive.py --split val
"""
import argparse
import json
import sys

from mmengine.config import Config, DictAction

from hvlm.analysis.dataset_browser import build_split_dataset
from hvlm.analysis.motion_stats import format_motion_stats, motion_stats


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Per-clip motion, as the adaptive token merger sees it')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--split', default='val',
                        help='train, val or test (default: val)')
    parser.add_argument('--max-videos', type=int,
                        help='read only the first N videos')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='override config entries, e.g. '
        'model.backbone.merger.motion.min_motion=0.25')
    parser.add_argument('--out-json', help='also write the speeds here')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    try:
        dataset = build_split_dataset(cfg, args.split)
        result = motion_stats(cfg.model.to_dict(), dataset,
                              batch_size=args.batch_size,
                              max_videos=args.max_videos)
    except (KeyError, ValueError) as e:
        print(f'{args.config}: {e.args[0]}', file=sys.stderr)
        return 2
    print(f'{args.config}, {args.split} split')
    print(format_motion_stats(result))
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(result, f)
    return 0


if __name__ == '__main__':
    sys.exit(main())
