"""Mean and spread of test metrics over several runs (e.g. 3 K-shot seeds).

    python tools/analysis_tools/summarize_seeds.py WORK_DIR [WORK_DIR ...]
        [--prefix recog/] [--scale 100]

Each WORK_DIR is a tools/test.py --work-dir; the last test summary line of
its newest log is read. Prints mean and sample standard deviation of every
metric whose name starts with the prefix ('' for all), times the scale (in
% by default; --scale 1 for CIDEr and the like).
"""
import argparse
import sys

from hvlm.analysis import format_summary, read_test_metrics, summarize_runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dirs', nargs='+')
    parser.add_argument('--prefix', default='recog/')
    parser.add_argument('--scale', type=float, default=100.)
    args = parser.parse_args(argv)
    runs = [read_test_metrics(d, args.prefix) for d in args.work_dirs]
    print(format_summary(summarize_runs(runs), args.scale))
    return 0


if __name__ == '__main__':
    sys.exit(main())
