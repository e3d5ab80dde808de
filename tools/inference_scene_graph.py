"""Scene graphs of one video with a trained model: JSON and pictures.

    python tools/inference_scene_graph.py CONFIG CHECKPOINT --video VID \
        --out DIR [--split test] [--constraint with|semi|no] [--top-k 20] \
        [--max-lines 10] [--device cpu] [--cfg-options k=v ...]

``--video`` is a video id of the config's test data (``D0081.mp4``, or a
path whose file name is one): its boxes come from the annotations (PredCLS,
SGCLS) or the detections file (SGDET) that the config names, its frames
from ``frames/`` or ``videos/`` as the config reads them. Written:
``DIR/<VID>.json`` (the triplets of every frame, best first, ranked as the
evaluator ranks them under ``--constraint``) and ``DIR/<VID>/<frame>.png``
(each frame at its original size with the boxes drawn and the best
triplets listed under it). The work is done by
:func:`hvlm.apis.inference_scene_graph`.
"""
import argparse
import json
import os
import os.path as osp
import sys

import cv2

from hvlm.apis import init_model, inference_scene_graph
from hvlm.datasets.transforms import LoadSceneGraphFrames
from hvlm.registry import DATASETS
from hvlm.utils import CheckpointLoadError
from hvlm.utils.cli import CfgOptionsAction
from hvlm.visualization import draw_scene_graph


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write the scene graphs of one video as JSON and PNG')
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--video', required=True,
                        help="video id in the config's data, e.g. D0081.mp4")
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--split', default='test', choices=('train', 'test'),
                        help='the split holding the video')
    parser.add_argument('--constraint', default='with',
                        choices=('with', 'semi', 'no'),
                        help='how triplets are chosen (as the evaluator)')
    parser.add_argument('--top-k', type=int, default=20,
                        help='triplets kept per frame')
    parser.add_argument('--max-lines', type=int, default=10,
                        help='triplets written under each picture')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        default={}, help='override config keys')
    return parser.parse_args(argv)


def build_dataset(cfg, split: str):
    """The config's test data set, on ``split``, reading the label indices
    from the training root as the runner does."""
    ds_cfg = dict(cfg.test_dataloader.dataset)
    ds_cfg['split'] = split
    ds_cfg.setdefault('vocab_root', cfg.train_dataloader.dataset.data_root)
    return DATASETS.build(ds_cfg)


def original_frames(info: dict):
    """The video's frames at their original size, RGB."""
    if info.get('video_path'):
        return LoadSceneGraphFrames._decode(info['video_path'],
                                            info['frame_indices'])
    return [cv2.imread(p, cv2.IMREAD_COLOR)[..., ::-1]
            for p in info['frame_paths']]


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        model = init_model(args.config, args.checkpoint, args.device,
                           args.cfg_options)
    except CheckpointLoadError as e:
        print(f'inference_scene_graph.py: {e}', file=sys.stderr)
        return 1
    dataset = build_dataset(model.cfg, args.split)
    video_id = osp.basename(args.video.rstrip('/'))
    try:
        result = inference_scene_graph(model, dataset, video_id,
                                       args.constraint, args.top_k)
    except KeyError as e:
        print(f'inference_scene_graph.py: {e.args[0]}', file=sys.stderr)
        return 1
    os.makedirs(osp.join(args.out, video_id), exist_ok=True)
    with open(osp.join(args.out, f'{video_id}.json'), 'w') as f:
        json.dump(result, f, indent=1)
    info = next(dataset.get_data_info(i) for i in range(len(dataset))
                if dataset.get_data_info(i)['video_id'] == video_id)
    for img, frame in zip(original_frames(info), result['frames']):
        picture = draw_scene_graph(img, frame, args.max_lines)
        name = osp.splitext(osp.basename(frame['frame']))[0] + '.png'
        cv2.imwrite(osp.join(args.out, video_id, name), picture[..., ::-1])
    print(f'{len(result["frames"])} frames of {video_id}: '
          f'{osp.join(args.out, video_id + ".json")} and '
          f'{osp.join(args.out, video_id)}/*.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
