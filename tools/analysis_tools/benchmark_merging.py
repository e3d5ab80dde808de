"""Encoder forward + backward throughput at several token-merging ratios.

    python tools/analysis_tools/benchmark_merging.py CONFIG
        [--ratios 1.0 0.75 0.5 0.25] [--iters N] [--warmup N]
        [--batch-size B] [--clip-shape T H W] [--threads N]
        [--cfg-options k=v ...] [--out-json FILE]

One encoder runs every ratio (set through ``set_compression_ratio``, as a
training hook would); ratio 1.0 (every merge point skipped: the same
encoder without merging) is always measured, in the same run, as the
baseline. Merge points and plan come from the config
(``model.backbone.merge_after``, ``...merger.adaptive_merging.mode``).
Prints a Markdown table; ``--out-json`` also writes the numbers.
"""
import argparse
import json

from mmengine.config import Config, DictAction

from hvlm.analysis.merging_benchmark import (benchmark_merging,
                                             format_merging_benchmark)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Time the encoder at several token-merging ratios')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--ratios', type=float, nargs='+', default=[1.0, 0.75, 0.5, 0.25],
        help='share of tokens kept by all merge points together '
        '(1.0: no merging)')
    parser.add_argument('--iters', type=int, default=10,
                        help='timed steps per ratio')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed steps per ratio first')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--clip-shape', type=int, nargs=3,
                        default=[8, 64, 64], metavar=('T', 'H', 'W'))
    parser.add_argument('--threads', type=int,
                        help='torch threads (default: torch\'s choice)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='override config entries, e.g. '
        'model.backbone.merger.strength=2')
    parser.add_argument('--out-json', help='also write the results here')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    result = benchmark_merging(
        cfg.model.to_dict(),
        ratios=args.ratios,
        batch_size=args.batch_size,
        clip_shape=args.clip_shape,
        iters=args.iters,
        warmup=args.warmup,
        threads=args.threads)
    result['config'] = args.config
    print(format_merging_benchmark(result))
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
