"""Inference speed of LoRA: merged adapters against the plain model.

    python tools/analysis_tools/benchmark_lora.py CONFIG [--batch-size 4]
        [--clip-shape 8 64 64] [--iters 10] [--warmup 2] [--threads N]
        [--rank 8] [--cfg-options k=v ...]

Times the backbone without adapters (the baseline, in the same run), with
unmerged LoRA for one domain and for a different domain per sample, and
with the domain merged into the weights; prints each median and its ratio
to the baseline, and checks that merged and unmerged outputs agree.
"""
import argparse
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from hvlm.analysis import benchmark_lora, format_benchmark


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument(
        '--clip-shape', type=int, nargs=3, default=(8, 64, 64),
        metavar=('T', 'H', 'W'))
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, help='torch threads')
    parser.add_argument('--rank', type=int, default=8, help='LoRA rank')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='override config entries')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'hvlm'))
    adapter = dict(cfg.model.get('adapter') or {})
    adapter.update(type=adapter.get('type', 'LoRAAdapter'), rank=args.rank,
                   alpha=2. * args.rank, freeze_base=False)
    result = benchmark_lora(
        cfg.model.to_dict(), adapter, batch_size=args.batch_size,
        clip_shape=args.clip_shape, iters=args.iters, warmup=args.warmup,
        threads=args.threads)
    print(args.config)
    print(format_benchmark(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
