"""Speed of scene-graph evaluation and training, each beside its baseline.

    python tools/analysis_tools/benchmark_scene_graph.py \
        [--videos 50] [--frames 8] [--objects 3] [--repeats 3] \
        [--train-videos 2] [--iters 5] [--warmup 1] [--threads N] \
        [--out result.json]

1. ``SceneGraphRecall`` against a straightforward per-frame loop of the
   same definition, on the same synthetic predictions (their recalls are
   checked equal first): frames per second and the ratio.
2. One training step (forward, loss, backward, AdamW) per frame of every
   scene-graph model registered with a demo config
   (``configs/scene_graph/<model>_predcls_demo.py``), beside STTran's, and
   STTran without its temporal decoder (the per-frame model).
"""
import argparse
import json
import sys

import torch

from hvlm.analysis.scene_graph_benchmark import (benchmark_evaluator,
                                                 benchmark_training,
                                                 format_scene_graph_benchmark)

CONFIG_DIR = 'configs/scene_graph'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--videos', type=int, default=50,
                        help='synthetic videos the evaluators score')
    parser.add_argument('--frames', type=int, default=8,
                        help='frames per video (both benchmarks)')
    parser.add_argument('--objects', type=int, default=3,
                        help='objects per frame (both benchmarks)')
    parser.add_argument('--repeats', type=int, default=3,
                        help='evaluations of each, the median reported')
    parser.add_argument('--train-videos', type=int, default=2,
                        help='videos per training batch')
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--config-dir', default=CONFIG_DIR)
    parser.add_argument('--threads', type=int, help='torch threads')
    parser.add_argument('--out', help='also write the results as JSON')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    evaluator = benchmark_evaluator(args.videos, args.frames, args.objects,
                                    repeats=args.repeats)
    training = benchmark_training(
        args.config_dir, videos=args.train_videos, frames=args.frames,
        objects=args.objects, iters=args.iters, warmup=args.warmup,
        extra={'STTran per-frame': dict(config='STTran', temporal_layer=0)})
    print(format_scene_graph_benchmark(evaluator, training))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(evaluator=evaluator, training=training), f,
                      indent=1, default=str)
    return 0


if __name__ == '__main__':
    sys.exit(main())
