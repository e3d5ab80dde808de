"""Soak test: train for many iterations and report memory and descriptor
growth after warm-up.

    python tools/analysis_tools/benchmark_soak.py tests/data/configs/tiny_sports.py \
        --iters 2000 --warmup 200 [--cfg-options ...] [--out-json soak.json]

Exit code 1 when resident memory grows more than --max-growth percent after
warm-up or descriptors grow at all.
"""
import argparse
import json
import sys

from mmengine.config import Config, DictAction

from hvlm.engine.soak import soak_config, summarize_soak
from hvlm.utils import register_all_modules
from hvlm.utils.cli import build_runner


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--iters', type=int, default=2000)
    parser.add_argument('--warmup', type=int, default=200)
    parser.add_argument('--interval', type=int, default=50)
    parser.add_argument('--max-growth', type=float, default=5.0,
                        help='allowed RSS growth after warm-up, percent')
    parser.add_argument('--work-dir', default='work_dirs/soak')
    parser.add_argument('--out-json')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir
    cfg.launcher = 'none'
    runner = build_runner(soak_config(cfg, args.iters, args.interval))
    runner.train()
    monitor = next(h for h in runner.hooks
                   if type(h).__name__ == 'ResourceMonitorHook')
    result = summarize_soak(monitor.samples, args.warmup)
    print(f"iterations {result['warmup_iter']} -> {result['last_iter']}: "
          f"RSS {result['rss_mb_after_warmup']} -> {result['rss_mb_last']} "
          f"MB ({result['rss_growth_pct']:+.2f}%), peak "
          f"{result['rss_peak_mb']} MB; open fds {result['fds_after_warmup']}"
          f" -> {result['fds_last']}")
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(result, f, indent=1)
    ok = (result['rss_growth_pct'] <= args.max_growth
          and result['fds_last'] <= result['fds_after_warmup'])
    print('PASS' if ok else 'FAIL')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
