"""SimCLR images/s and peak memory with and without gradient checkpointing,
and HViT with FullAttention against an efficient attention at a high
resolution; each beside its baseline measured in the same run.

    python tools/analysis_tools/benchmark_selfsup.py \
        [--simclr-size 64 --simclr-batch 32] [--hires-size 512] \
        [--efficient LocalGlobalAttention] [--embed-dim 32] \
        [--depths 1 1 2 1] [--heads 1 2 4 8] [--patch-size 8] \
        [--device cpu|cuda] [--repeat 3] [--threads N] [--out-json FILE]

The defaults are the demo configs' HViT widths and depths at 64 px
(the demo now trains at 32 px, patch 4); pass ``--embed-dim 96 --depths 2
2 6 2 --heads 3 6 12 24 --patch-size 16`` for the seed's. The logic lives
in ``hvlm.analysis.selfsup_benchmark``.
"""
import argparse
import json

from hvlm.analysis.selfsup_benchmark import (benchmark, format_table,
                                             hvit_config)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--simclr-size', type=int, default=64)
    parser.add_argument('--simclr-batch', type=int, default=32)
    parser.add_argument('--hires-size', type=int, default=512)
    parser.add_argument('--hires-batch', type=int, default=2)
    parser.add_argument('--efficient', default='LocalGlobalAttention',
                        help='the efficient attention (ATTENTIONS type)')
    parser.add_argument('--efficient-cfg', default='{"window_size": 64, '
                        '"num_global": 16}', help='its extra arguments, JSON')
    parser.add_argument('--embed-dim', type=int, default=32)
    parser.add_argument('--depths', type=int, nargs='+', default=[1, 1, 2, 1])
    parser.add_argument('--heads', type=int, nargs='+', default=[1, 2, 4, 8])
    parser.add_argument('--patch-size', type=int, default=8)
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--out-json', help='write the rows here')
    return parser.parse_args(argv)


def build_groups(args: argparse.Namespace) -> dict:
    def backbone(size, attention, with_cp=False):
        return hvit_config(size, args.patch_size, args.embed_dim,
                           args.depths, args.heads, attention, with_cp)

    common = dict(device=args.device, repeat=args.repeat)
    if args.threads:
        common['threads'] = args.threads
    full = dict(type='FullAttention')
    efficient = dict(type=args.efficient, **json.loads(args.efficient_cfg))
    tokens = (args.hires_size // args.patch_size)**2
    return {
        f'SimCLR {args.simclr_size}px b{args.simclr_batch}': [
            dict(name='with_cp=False (baseline)', kind='simclr',
                 batch=args.simclr_batch,
                 backbone=backbone(args.simclr_size, full), **common),
            dict(name='with_cp=True', kind='simclr', batch=args.simclr_batch,
                 backbone=backbone(args.simclr_size, full, True), **common),
        ],
        f'HViT {args.hires_size}px ({tokens} tok)': [
            dict(name='FullAttention (baseline)', kind='hvit',
                 batch=args.hires_batch,
                 backbone=backbone(args.hires_size, full), **common),
            dict(name=args.efficient, kind='hvit', batch=args.hires_batch,
                 backbone=backbone(args.hires_size, efficient), **common),
        ],
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    print(f'device={args.device}; training steps (forward, backward, AdamW),'
          f' median of {args.repeat}; speed x / memory x relative to the '
          'first case of each group, measured in this run')
    rows = benchmark(build_groups(args))
    print(format_table(rows))
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
