"""Run a trained model on one video and print what it finds as JSON.

    python tools/inference.py VIDEO CONFIG CHECKPOINT \\
        [--task {action_detection,qa,captioning,all}] [--question Q] \\
        [--out result.json] [--show-dir DIR]

The video streams through the model clip by clip (a progress bar on
stderr); stdout carries the JSON alone, so it can be piped. ``--show-dir``
writes ``<video stem>_timeline.png``. The work is done by
:func:`hvlm.apis.inference_video`.
"""
import argparse
import contextlib
import json
import os
import os.path as osp
import sys

from hvlm.apis import TASKS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Detect actions, answer a question and caption a video '
        'with a trained hvlm model')
    parser.add_argument('video', help='video file (any format decord reads)')
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--task',
        choices=TASKS + ('all', ),
        default='all',
        help="what to run; 'all' runs every task the model has a head for "
        '(QA only with --question)')
    parser.add_argument('--question', help="the question for --task qa")
    parser.add_argument('--out', help='also write the JSON to this file')
    parser.add_argument(
        '--show-dir',
        help='write a timeline picture <video stem>_timeline.png here')
    args = parser.parse_args(argv)
    if args.task == 'qa' and not (args.question or '').strip():
        parser.error('--task qa needs --question "..."')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    from hvlm.apis import inference_video, init_model
    from hvlm.datasets.exceptions import VideoReadError
    from hvlm.utils import CheckpointLoadError

    # Logs go to stderr so that stdout is the JSON alone.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            model = init_model(args.config, args.checkpoint)
            result = inference_video(
                model, args.video, task=args.task, question=args.question)
        except (VideoReadError, CheckpointLoadError, ValueError,
                FileNotFoundError) as err:
            raise SystemExit(f'inference.py: error: {err}') from None
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    if args.show_dir:
        from hvlm.visualization import draw_timeline
        stem = osp.splitext(osp.basename(args.video))[0]
        path = draw_timeline(result,
                             osp.join(args.show_dir, f'{stem}_timeline.png'))
        print(f'timeline: {path}', file=sys.stderr)


if __name__ == '__main__':
    main()
