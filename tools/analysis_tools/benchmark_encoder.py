"""Speed of the pretrained frame encoder, each figure beside its baseline.

    python tools/analysis_tools/benchmark_encoder.py \
        [--pretrained DIR | --arch clip-vit-b16] [--batch-size 2]
        [--frames 8] [--rounds 5] [--iters 5] [--warmup 1] [--videos N]
        [--num-workers 0] [--skip-wrapper] [--skip-cache]
        [--cfg-options k=v ...]

A. frames/s of hvlm's HFVisionEncoder (frozen, no_grad) against the
   transformers model it wraps, called directly on the same frames.
B. training iterations/s of CONFIG (decode and encode every step) against
   CACHED_CONFIG after extracting the cache (timed too), on the same
   videos.

Without --pretrained, a randomly initialised model of --arch is written to
a temporary directory (speed does not depend on weight values).
"""
import argparse
import os.path as osp
import sys
import tempfile

from mmengine.config import Config, DictAction

from hvlm.analysis.encoder_benchmark import (ARCHS, benchmark_cache,
                                             benchmark_wrapper,
                                             format_encoder_benchmark,
                                             save_random_clip)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'pretrained', 'hier_sports_clip-vitb16.py')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=CONFIG,
                        help='config that decodes and encodes videos')
    parser.add_argument('--cached-config',
                        help='config that trains from the cache (default: '
                        'CONFIG with _cached before .py)')
    parser.add_argument('--pretrained', help='local CLIP/SigLIP directory')
    parser.add_argument('--arch', default='clip-vit-b16', choices=ARCHS,
                        help='random model to build without --pretrained')
    parser.add_argument('--batch-size', type=int, default=2,
                        help='clips per wrapper call; videos per train step')
    parser.add_argument('--frames', type=int, default=8,
                        help='frames per clip in part A')
    parser.add_argument('--rounds', type=int, default=5,
                        help='timed rounds in part A')
    parser.add_argument('--iters', type=int, default=5,
                        help='timed training iterations per setting')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--videos', type=int,
                        help='training videos (default: batch size x '
                        '(warmup + iters))')
    parser.add_argument('--num-workers', type=int, default=0)
    parser.add_argument('--skip-wrapper', action='store_true')
    parser.add_argument('--skip-cache', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='override entries of both configs')
    return parser.parse_args(argv)


def load_configs(args: argparse.Namespace):
    cached = args.cached_config or args.config[:-len('.py')] + '_cached.py'
    cfgs = []
    for path in (args.config, cached):
        cfg = Config.fromfile(path)
        cfg.merge_from_dict(args.cfg_options)
        cfgs.append(cfg)
    return cfgs


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        pretrained = args.pretrained
        if pretrained is None:
            pretrained = osp.join(tmp, args.arch)
            save_random_clip(pretrained, args.arch)
            print(f'weights: randomly initialised {args.arch} written to '
                  f'{pretrained} (no --pretrained given)')
        else:
            print(f'weights: {pretrained}')
        wrapper = cache = None
        if not args.skip_wrapper:
            wrapper = benchmark_wrapper(
                pretrained, batch_size=args.batch_size,
                num_frames=args.frames, rounds=args.rounds,
                warmup=args.warmup)
        if not args.skip_cache:
            video_cfg, cached_cfg = load_configs(args)
            print(f'configs: {args.config} against '
                  f'{osp.basename(cached_cfg.filename)}')
            cache = benchmark_cache(
                video_cfg, cached_cfg, pretrained, osp.join(tmp, 'cache'),
                batch_size=args.batch_size, num_videos=args.videos,
                iters=args.iters, warmup=args.warmup,
                num_workers=args.num_workers)
        print(format_encoder_benchmark(wrapper, cache))
    return 0


if __name__ == '__main__':
    sys.exit(main())
