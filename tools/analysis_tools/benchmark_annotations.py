"""Dataset build time on large annotation files against parsing them once.

Times building the train and val datasets of a config on synthetic
annotation files, against parsing and validating each file once, in the
same run.

    python tools/analysis_tools/benchmark_annotations.py
        [--num-videos 100000] [--val-videos N] [--config CONFIG]
        [--without-cache] [--tmp-dir DIR] [--out-json FILE]

The annotations (about 1.1 kB of JSON per video, no video files) are
written into a new temporary directory, removed afterwards. The logic lives
in ``hvlm.analysis.annotation_benchmark``.
"""
import argparse
import json
import tempfile

from hvlm.analysis.annotation_benchmark import (benchmark_annotations,
                                                format_annotation_benchmark)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-videos', type=int, default=100000,
                        help='videos of the training split (the default '
                        'writes about 125 MB of JSON over both splits)')
    parser.add_argument('--val-videos', type=int,
                        help='videos of the validation split (default: a '
                        'tenth of --num-videos)')
    parser.add_argument('--config', default='configs/hier_general.py',
                        help='config whose train/val datasets are built')
    parser.add_argument('--without-cache', action='store_true',
                        help='also time the build with the parse cache off')
    parser.add_argument('--tmp-dir',
                        help='parent of the temporary directory (default: '
                        'the system temporary directory)')
    parser.add_argument('--out-json', help='also write the results here')
    args = parser.parse_args(argv)
    if args.num_videos < 1:
        parser.error(f'--num-videos {args.num_videos}: expected a positive '
                     'number of videos')
    if args.val_videos is not None and args.val_videos < 1:
        parser.error(f'--val-videos {args.val_videos}: expected a positive '
                     'number of videos')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(
            prefix='hvlm_ann_bench_', dir=args.tmp_dir) as work_dir:
        result = benchmark_annotations(
            work_dir, args.num_videos, args.val_videos, args.config,
            without_cache=args.without_cache)
    print(format_annotation_benchmark(result))
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
