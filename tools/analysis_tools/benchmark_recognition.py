"""Training-step time of each CLIP prompt learner beside the linear probe.

    python tools/analysis_tools/benchmark_recognition.py CLIP_DIR
        [--methods video_coop dual_coop ...] [--num-classes 101]
        [--batch-size 2] [--views 1] [--frames 8] [--iters 5] [--warmup 1]
        [--threads N]

Every method's step (forward, loss, backward, optimizer step) is timed in
the same run as the linear probe on the same frozen features (the
baseline), round-robin in a shuffled order; prints each median, its ratio
to the baseline and how many texts the text tower encoded per step.
"""
import argparse
import sys

from hvlm.analysis import (benchmark_recognition,
                           format_recognition_benchmark)
from hvlm.analysis.recognition_benchmark import METHODS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('pretrained', help='local CLIP directory')
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=list(METHODS))
    parser.add_argument('--num-classes', type=int, default=101)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--views', type=int, default=1)
    parser.add_argument('--frames', type=int, default=8)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--pooling', default='mean',
                        choices=('mean', 'max', 'attention'))
    parser.add_argument('--threads', type=int, help='torch threads')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    result = benchmark_recognition(
        args.pretrained, methods=args.methods, num_classes=args.num_classes,
        batch_size=args.batch_size, views=args.views, frames=args.frames,
        iters=args.iters, warmup=args.warmup, pooling=args.pooling,
        threads=args.threads)
    print(format_recognition_benchmark(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
