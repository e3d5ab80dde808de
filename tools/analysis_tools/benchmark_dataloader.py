"""Clips per second of a config's training DataLoader with 0, 1, 2 ...
workers, decoding its real videos; or the data-time share of a finished run.

    python tools/analysis_tools/benchmark_dataloader.py CONFIG
        [--num-workers 0 1 2] [--num-batches 20] [--warmup-batches 1]
        [--cfg-options k=v ...] [--out-json FILE]
    python tools/analysis_tools/benchmark_dataloader.py --from-log WORK_DIR
        [--target 0.1]

The loader is built as a training run builds it (``HVLMRunner``'s
``build_dataloader``: sampler, collate, worker seeding), and 0 workers, the
baseline, is always measured in the same run. ``--from-log`` reads
the JSON logs of every run in a work dir (or of one run, or one log file),
as ``analyze_logs.py`` does, and prints sum(data_time) / sum(time) over the
training iterations against the target share; the exit code is 1 when it
is above the target. The logic
lives in ``hvlm.analysis.dataloader_benchmark``.
"""
import argparse
import json

from mmengine.config import Config, DictAction

from hvlm.analysis.dataloader_benchmark import (benchmark_dataloader,
                                                data_time_share,
                                                format_data_time_share,
                                                format_dataloader_benchmark)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', help='config file path')
    parser.add_argument('--num-workers', type=int, nargs='+',
                        default=[0, 1, 2],
                        help='worker counts to time (0 is always included)')
    parser.add_argument('--num-batches', type=int, default=20,
                        help='batches timed per worker count')
    parser.add_argument('--warmup-batches', type=int, default=1,
                        help='first batches, reported apart (worker '
                        'start-up)')
    parser.add_argument('--batch-size', type=int,
                        help='override train_dataloader.batch_size')
    parser.add_argument('--from-log', metavar='RUN',
                        help='report the data-time share of finished runs '
                        '(a work dir: all its runs; a run dir; or a '
                        'scalars.json) instead')
    parser.add_argument('--target', type=float, default=0.1,
                        help='largest acceptable data-time share (--from-log)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='override config entries, e.g. '
        'train_dataloader.dataset.data_root=DIR/training')
    parser.add_argument('--out-json', help='also write the results here')
    args = parser.parse_args(argv)
    if (args.config is None) == (args.from_log is None):
        parser.error('give either CONFIG (time the loader) or --from-log RUN '
                     '(read a finished run), not both or neither')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.from_log:
        result = data_time_share(args.from_log, args.target)
        print(format_data_time_share(result))
        code = 0 if result['ok'] else 1
    else:
        from mmengine.utils.dl_utils import set_multi_processing

        from hvlm.utils import register_all_modules
        register_all_modules(init_default_scope=True)
        cfg = Config.fromfile(args.config)
        cfg.merge_from_dict(args.cfg_options)
        if cfg.get('train_dataloader') is None:
            raise SystemExit(f'{args.config} has no train_dataloader')
        loader_cfg = cfg.train_dataloader.to_dict()
        if args.batch_size is not None:
            loader_cfg['batch_size'] = args.batch_size
        # the start method and thread settings a run would use
        mp_cfg = (cfg.get('env_cfg') or {}).get('mp_cfg') or {}
        set_multi_processing(**mp_cfg, distributed=False)
        seed = (cfg.get('randomness') or {}).get('seed') or 0
        result = benchmark_dataloader(
            loader_cfg, num_workers=args.num_workers,
            num_batches=args.num_batches,
            warmup_batches=args.warmup_batches, seed=seed,
            log=lambda line: print(line, flush=True))
        result['config'] = args.config
        print('\n' + format_dataloader_benchmark(result))
        code = 0
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(result, f, indent=1)
        print(f'wrote {args.out_json}')
    return code


if __name__ == '__main__':
    raise SystemExit(main())
