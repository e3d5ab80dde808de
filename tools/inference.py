"""Run a trained model on one video and print what it finds as JSON.

    python tools/inference.py VIDEO CONFIG CHECKPOINT \\
        [--task {action_detection,qa,captioning,all}] [--question Q] \\
        [--domain auto|none|NAME] [--device cpu] [--score-thr 0.3] \\
        [--max-segments N] [--max-captions N] [--top-k K] \\
        [--memory-tokens M] [--cfg-options k=v ...] \\
        [--out result.json] [--show-dir DIR] [--ann-file FILE]

The video streams through the model clip by clip (a progress bar on
stderr); stdout carries the JSON alone, so it can be piped, and each of its
``warnings`` is also printed on stderr. ``--show-dir`` writes
``<video stem>_timeline.png``, with the ground truth in its own lane when
``--ann-file`` or the data layout around the video
(``videos/../annotations/action_detection.json``) lists it. The work is
done by :func:`hvlm.apis.inference_video`.
"""
import argparse
import contextlib
import json
import os
import os.path as osp
import sys

from mmengine.config import DictAction

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
    parser.add_argument(
        '--domain',
        default='auto',
        help="domain of the adapter / experts: 'auto' (default: what "
        "tools/test.py would use), 'none' (the base model) or a name")
    parser.add_argument('--device', default='cpu',
                        help="where the model runs, e.g. 'cuda:0'")
    parser.add_argument('--score-thr', type=float, default=0.,
                        help='drop segments scored below this (0-1)')
    parser.add_argument(
        '--max-segments', type=int,
        help="most segments kept (default: the head's max_segments)")
    parser.add_argument(
        '--max-captions', type=int,
        help='most segments captioned, the best scored (default: the '
        "captioning head's max_pred_segments)")
    parser.add_argument('--top-k', type=int, default=5,
                        help='answers listed with their probabilities')
    parser.add_argument('--memory-tokens', type=int, default=256,
                        help='bound on the token memory of QA and captioning')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='override config entries, e.g. model.head.heads.'
        'action_detection.nms_iou=0.4')
    parser.add_argument('--out', help='also write the JSON to this file')
    parser.add_argument(
        '--show-dir',
        help='write a timeline picture <video stem>_timeline.png here')
    parser.add_argument(
        '--ann-file',
        help='action_detection.json with the ground truth of the video '
        '(default: the one of the data layout around it, if any)')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar on stderr')
    args = parser.parse_args(argv)
    if args.task == 'qa' and not (args.question or '').strip():
        parser.error('--task qa needs --question "..."')
    if not 0. <= args.score_thr <= 1.:
        parser.error(f'--score-thr {args.score_thr} must be in [0, 1]')
    for name in ('max_segments', 'max_captions', 'top_k', 'memory_tokens'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} {value} must be >= 1')
    return args


def inference_kwargs(args: argparse.Namespace) -> dict:
    """The keyword arguments of ``inference_video`` that the flags set."""
    return dict(
        task=args.task,
        question=args.question,
        domain=None if args.domain.lower() == 'none' else args.domain,
        score_thr=args.score_thr,
        max_segments=args.max_segments,
        max_captions=args.max_captions,
        top_k=args.top_k,
        memory_tokens=args.memory_tokens,
        ann_file=args.ann_file,
        progress=not args.no_progress)


def main(argv=None) -> None:
    args = parse_args(argv)
    from hvlm.apis import inference_video, init_model
    from hvlm.datasets.exceptions import VideoReadError
    from hvlm.utils import CheckpointLoadError

    # Logs go to stderr so that stdout is the JSON alone.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            model = init_model(args.config, args.checkpoint,
                               device=args.device,
                               cfg_options=args.cfg_options)
            result = inference_video(model, args.video,
                                     **inference_kwargs(args))
        except (VideoReadError, CheckpointLoadError, ValueError,
                FileNotFoundError) as err:
            raise SystemExit(f'inference.py: error: {err}') from None
    for warning in result['warnings']:
        print(f'inference.py: warning: {warning}', file=sys.stderr)
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
