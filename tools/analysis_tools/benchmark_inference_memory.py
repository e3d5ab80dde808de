"""Peak resident memory of tools/inference.py on a video 1x, 10x, 100x ...
as long, each length in a fresh process.

    python tools/analysis_tools/benchmark_inference_memory.py VIDEO CONFIG \\
        CHECKPOINT [--repeats 1 10 100 600] [--threads 1] \\
        [--work-dir DIR] [--out-json FILE] [-- INFERENCE OPTIONS]

The long videos are VIDEO played N times in a row, encoded for real (h264)
in a temporary directory under ``--work-dir``. The 1x run is always
measured and is the baseline of every ratio. Options after ``--`` go to
tools/inference.py (default: ``--task all --question "what happens
first?"``). The logic lives in ``hvlm.analysis.inference_memory``.
"""
import argparse
import json
import sys

from hvlm.analysis.inference_memory import (benchmark_inference_memory,
                                            format_inference_memory)

DEFAULT_ARGS = ['--task', 'all', '--question', 'what happens first?']


def parse_args(argv=None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = DEFAULT_ARGS
    if '--' in argv:
        cut = argv.index('--')
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('video', help='the short video to loop')
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--repeats', type=int, nargs='+',
                        default=[1, 10, 100],
                        help='lengths, in multiples of VIDEO (1 is always '
                        'run)')
    parser.add_argument('--threads', type=int,
                        help='OMP_NUM_THREADS of each inference run')
    parser.add_argument('--work-dir', help='where the long videos are '
                        'written (a temporary directory inside it)')
    parser.add_argument('--out-json', help='also write the results here')
    args = parser.parse_args(argv)
    if min(args.repeats) < 1:
        parser.error(f'--repeats {args.repeats} must all be >= 1')
    args.inference_args = extra
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    result = benchmark_inference_memory(
        args.video, args.config, args.checkpoint, args.repeats,
        args=args.inference_args, threads=args.threads,
        work_dir=args.work_dir, log=lambda line: print(line, flush=True))
    print('\n' + format_inference_memory(result))
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(result, f, indent=1)
        print(f'wrote {args.out_json}')


if __name__ == '__main__':
    main()
