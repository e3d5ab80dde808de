"""Plot curves of training logs and time their iterations.

    python tools/analysis_tools/analyze_logs.py plot_curve LOG [LOG ...]
        --keys loss lr action/frame_top1 [--legend A B] [--out FILE.png]
        [--title T] [--layout subplots|overlay]
    python tools/analysis_tools/analyze_logs.py cal_train_time LOG [LOG ...]
        [--include-outliers]

LOG is ``work_dir/<timestamp>/vis_data/scalars.json`` (or
``<timestamp>.json`` beside it), or a work dir: all its runs, oldest first.
Training keys are plotted against the iteration, validation keys (the
metrics, ``val/time``, ``val/data_time``) against the epoch. Without
``--out`` the figure goes to the first log's work dir as
``curves_<keys>.png``; the path is printed. ``cal_train_time`` prints the
average iteration time and every epoch's, from all its logged windows.
"""
import argparse
import sys

from hvlm.analysis.log_curves import (default_figure_path,
                                      format_train_time, load_scalars,
                                      plot_curves, save_figure,
                                      train_time_stats)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Analyse the JSON logs of training runs')
    commands = parser.add_subparsers(dest='command', required=True)

    plot = commands.add_parser(
        'plot_curve', help='plot logged scalars to an image')
    plot.add_argument('logs', nargs='+', help='JSON logs or work dirs')
    plot.add_argument(
        '--keys',
        nargs='+',
        default=['loss'],
        help='scalars to plot, e.g. loss lr action/frame_top1 val/time')
    plot.add_argument(
        '--legend', nargs='+', help='one name per log (default: work dir)')
    plot.add_argument('--title', help='figure title')
    plot.add_argument(
        '--layout',
        choices=('subplots', 'overlay'),
        default='subplots',
        help='one axes per key, or all keys in one axes')
    plot.add_argument(
        '--out',
        help='image file to write (default: curves_<keys>.png in the work '
        'dir of the first log)')

    timing = commands.add_parser(
        'cal_train_time', help='average iteration time and per epoch')
    timing.add_argument('logs', nargs='+', help='JSON logs or work dirs')
    timing.add_argument(
        '--include-outliers',
        action='store_true',
        help="also count each epoch's first logged window in the average")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.command == 'plot_curve':
            fig, drawn = plot_curves(
                args.logs,
                args.keys,
                legend=args.legend,
                title=args.title,
                layout=args.layout)
            out = args.out or default_figure_path(args.logs[0], args.keys)
            save_figure(fig, out)
            for (log, _), series in drawn.items():
                print(f'{log}: {series.phase} {series.key}, {len(series.x)} points '
                      f'({series.x_name} {series.x.min():g}-'
                      f'{series.x.max():g})')
            print(f'saved {out}')
        else:
            for log in args.logs:
                stats = train_time_stats(
                    load_scalars(log), args.include_outliers)
                print(format_train_time(stats, log, args.include_outliers))
    except (FileNotFoundError, KeyError, ValueError) as e:
        message = e.args[0] if isinstance(e, KeyError) else str(e)
        print(f'analyze_logs.py {args.command}: {message}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
