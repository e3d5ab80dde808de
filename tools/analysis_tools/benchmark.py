"""Speed and peak training memory of a config's model against the same model
with FullAttention and no token merging, measured in the same run.

    python tools/analysis_tools/benchmark.py CONFIG [CHECKPOINT]
        [--speed] [--num-iterations 10] [--warmup 2]
        [--memory] [--max-sequence-length 16384 | --seq-lens L ...]
        [--max-frames 32] [--memory-iterations 2]
        [--compare-with-cp] [--compare-with-amp] [--batch-size B] [--model-config FILE]
        [--device cpu|cuda] [--threads N] [--mem-cap-mb MB] [--timeout-s S]
        [--cfg-options k=v ...] [--out-json FILE]

--speed: latency (median, 90th percentile) and clips per second of a
training step (forward, backward, optimizer step) and of inference
(predict, no gradients), on real batches of the config's loaders.

--memory: peak memory of a training step at 1024, 2048, ... tokens per clip
up to --max-sequence-length (the clip grows in time up to --max-frames
frames, then in space), each case in its own process; a case that passes
--mem-cap-mb (default: 90% of the memory available at start) or
--timeout-s is recorded as skipped.

--compare-with-amp (--speed) adds the model under mixed precision; its
speedup_vs_model says what --amp gains or loses on this machine (on CPU
--amp itself runs float32 where bfloat16 is more than 2x slower; see
hvlm.utils.cpu_amp).

--compare-with-cp adds the model with gradient checkpointing
(backbone.with_cp=True): its memory saving and time cost against the
model. --model-config takes `model` from another file, e.g.
configs/_base_/models/hvlm_base.py, and the data and optimizer from CONFIG.
The logic lives in ``hvlm.analysis.model_benchmark``.
"""
import argparse
import json
import os
import tempfile

from mmengine.config import Config, DictAction

from hvlm.analysis.model_benchmark import (BASELINE, available_memory_mb,
                                           benchmark_memory, benchmark_speed,
                                           format_memory, format_speed,
                                           sequence_lengths)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', nargs='?',
                        help='checkpoint to load (hvlm\'s safe loader)')
    parser.add_argument('--speed', action='store_true',
                        help='time training and inference steps')
    parser.add_argument('--memory', action='store_true',
                        help='peak training memory against sequence length')
    parser.add_argument('--num-iterations', type=int, default=10,
                        help='timed steps per setting (--speed)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed steps per setting first (--speed)')
    parser.add_argument('--max-sequence-length', type=int, default=16384,
                        help='longest tokens per clip (--memory)')
    parser.add_argument('--seq-lens', type=int, nargs='+',
                        help='tokens per clip to measure (--memory; '
                        'replaces 1024, 2048, ... --max-sequence-length)')
    parser.add_argument('--max-frames', type=int, default=32,
                        help='frames of the longest clip (--memory)')
    parser.add_argument('--memory-iterations', type=int, default=2,
                        help='measured training steps per case (--memory)')
    parser.add_argument('--compare-with-cp', action='store_true',
                        help='also the model with backbone.with_cp=True')
    parser.add_argument('--compare-with-amp', action='store_true',
                        help='also the model under mixed precision '
                        '(--speed)')
    parser.add_argument('--batch-size', type=int,
                        help='videos per batch (default: the config\'s for '
                        '--speed, 1 for --memory)')
    parser.add_argument('--model-config',
                        help='take `model` from this file instead')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--mem-cap-mb', type=float,
                        help='skip a --memory case that needs more resident '
                        'memory (default: 90%% of what is available)')
    parser.add_argument('--timeout-s', type=float,
                        help='skip a --memory case that runs longer')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='override config entries, e.g. '
        'train_dataloader.dataset.data_root=DIR/training')
    parser.add_argument('--out-json', help='also write the results here')
    args = parser.parse_args(argv)
    if not (args.speed or args.memory):
        parser.error('choose --speed, --memory or both')
    return args


def load_config(args: argparse.Namespace) -> Config:
    """CONFIG with --cfg-options and --model-config applied, checked."""
    from hvlm.utils import register_all_modules
    from hvlm.utils.config import check_config, share_vocabulary
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(args.config)
    if args.model_config:
        model_cfg = Config.fromfile(args.model_config)
        if 'model' not in model_cfg:
            raise SystemExit(f'--model-config {args.model_config} has no '
                             '`model`')
        cfg.model = model_cfg.model
    cfg.merge_from_dict(args.cfg_options)
    for key in ('model', 'train_dataloader', 'optim_wrapper'):
        if cfg.get(key) is None:
            raise SystemExit(f'{args.config} has no `{key}`: the benchmark '
                             'trains the model on the config\'s data')
    check_config(cfg)
    share_vocabulary(cfg)
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    cfg = load_config(args)
    settings = [BASELINE, 'model'] + (['model_with_cp']
                                      if args.compare_with_cp else [])
    speed_settings = settings + (['model_amp'] if args.compare_with_amp
                                 else [])
    log = lambda line: print(line, flush=True)  # noqa: E731
    result = dict(config=args.config, checkpoint=args.checkpoint,
                  model_config=args.model_config, device=args.device)
    print(f'{args.config}: "model" as configured; "baseline" the same with '
          'backbone.attention=FullAttention and backbone.merger=None'
          + ('; "model_with_cp" with backbone.with_cp=True'
             if args.compare_with_cp else '')
          + ('; "model_amp" the model under mixed precision (bfloat16 '
             'autocast on CPU)' if args.compare_with_amp else ''))
    if args.speed:
        print(f'\n--speed: median and p90 of {args.num_iterations} steps '
              f'after {args.warmup} warm-up, round-robin; real batches')
        speed = benchmark_speed(
            cfg, speed_settings, checkpoint=args.checkpoint,
            num_iterations=args.num_iterations, warmup=args.warmup,
            batch_size=args.batch_size, device=args.device, log=log)
        print('\n' + format_speed(speed))
        result['speed'] = speed
    if args.memory:
        seq_lens = args.seq_lens or sequence_lengths(
            args.max_sequence_length)
        mem_cap = args.mem_cap_mb
        if mem_cap is None and args.device == 'cpu':
            available = available_memory_mb()
            mem_cap = None if available is None else 0.9 * available
        batch_size = args.batch_size or 1
        print(f'\n--memory: training steps, batch {batch_size} of one clip '
              f'per video, clips up to {args.max_frames} frames; '
              f'memory cap {mem_cap and round(mem_cap)} MB, time cap '
              f'{args.timeout_s} s; peak_mb: activations + gradients above '
              'the resident model, total_mb: + parameters and optimizer '
              'state')
        with tempfile.TemporaryDirectory() as tmp:
            config_file = os.path.join(tmp, 'benchmark_config.py')
            cfg.dump(config_file)
            rows = benchmark_memory(
                config_file, seq_lens, settings, mem_cap_mb=mem_cap,
                timeout_s=args.timeout_s, log=log,
                max_frames=args.max_frames, batch_size=batch_size,
                checkpoint=args.checkpoint, device=args.device,
                num_iterations=args.memory_iterations, threads=args.threads)
        print('\n' + format_memory(rows))
        methods = sorted({r['memory_method'] for r in rows
                          if 'memory_method' in r})
        print(f'peak memory: {"; ".join(methods)}')
        result['memory'] = dict(rows=rows, mem_cap_mb=mem_cap,
                                timeout_s=args.timeout_s,
                                max_frames=args.max_frames,
                                batch_size=batch_size, memory_method=methods)
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(result, f, indent=1)
        print(f'wrote {args.out_json}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
