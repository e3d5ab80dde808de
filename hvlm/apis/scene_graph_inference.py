"""Scene graphs of one video: a trained model's triplets per frame.

The boxes a scene-graph model starts from come with the video: the
annotations' boxes in PredCLS/SGCLS, the detections file in SGDET. So one
video is named by its id in a data set (``ActionGenomeDataset``) whose
config says where those are.
"""
import difflib
from typing import Dict

import numpy as np
import torch

from hvlm.evaluation.metrics.scene_graph_recall import frame_triplets

__all__ = ['find_video', 'inference_scene_graph']


def find_video(dataset, video_id: str) -> int:
    """Index of ``video_id`` (``'VID.mp4'``) in ``dataset``; a KeyError
    naming the closest ids when it holds no such video."""
    ids = [dataset.get_data_info(i)['video_id'] for i in range(len(dataset))]
    if video_id in ids:
        return ids.index(video_id)
    close = difflib.get_close_matches(video_id, ids, n=3)
    raise KeyError(f'video {video_id!r} is not among the {len(ids)} videos '
                   f'of {dataset.data_root} (split {dataset.split!r}, after '
                   f'its drop rules)' +
                   (f'; close: {close}' if close else ''))


@torch.no_grad()
def inference_scene_graph(model: torch.nn.Module,
                          dataset,
                          video_id: str,
                          constraint: str = 'with',
                          top_k: int = 20) -> Dict:
    """Run ``model`` on one video of ``dataset`` and list its triplets.

    The triplets of a frame are ranked exactly as :class:`SceneGraphRecall`
    ranks them (:func:`frame_triplets`, score = subject score x object
    score x predicate score) under ``constraint``; the best ``top_k`` are
    kept.

    Returns:
        dict: ``video_id``, ``constraint`` and ``frames``, a list of
        ``dict(frame=key, index=t, objects=[dict(box, label, score)],
        triplets=[dict(subject, predicate, object, score, subject_box,
        object_box)])``; boxes are xyxy in the frame's original pixels.
    """
    classes = dataset.metainfo['classes']
    predicates = dataset.metainfo['predicates']
    item = dataset[find_video(dataset, video_id)]
    model.eval()
    out = model.test_step(dict(inputs=[item['inputs']],
                               data_samples=[item['data_samples']]))[0]
    p = {k: np.asarray(v.detach().cpu() if hasattr(v, 'detach') else v)
         for k, v in out.items() if k.startswith('pred_')}
    pair_frames = p['pred_box_frames'][p['pred_pairs'][:, 0]] \
        if len(p['pred_pairs']) else np.zeros(0, np.int64)
    frames = []
    for t, key in enumerate(out['frame_names']):
        nodes = np.nonzero(p['pred_box_frames'] == t)[0]
        remap = np.full(len(p['pred_boxes']), -1, np.int64)
        remap[nodes] = np.arange(len(nodes))
        in_frame = pair_frames == t
        rows, boxes, scores = frame_triplets(
            p['pred_boxes'][nodes], p['pred_labels'][nodes],
            p['pred_scores'][nodes], remap[p['pred_pairs'][in_frame]],
            p['pred_attention'][in_frame], p['pred_spatial'][in_frame],
            p['pred_contacting'][in_frame], constraint)
        rows, boxes, scores = rows[:top_k], boxes[:top_k], scores[:top_k]
        frames.append(dict(
            frame=key, index=t,
            objects=[dict(box=[round(float(v), 2) for v in b],
                          label=classes[int(c)], score=float(s))
                     for b, c, s in zip(p['pred_boxes'][nodes],
                                        p['pred_labels'][nodes],
                                        p['pred_scores'][nodes])],
            triplets=[dict(subject=classes[int(r[0])],
                           predicate=predicates[int(r[1])],
                           object=classes[int(r[2])], score=float(s),
                           subject_box=[round(float(v), 2) for v in b[:4]],
                           object_box=[round(float(v), 2) for v in b[4:]])
                      for r, b, s in zip(rows, boxes, scores)]))
    return dict(video_id=video_id, constraint=constraint, frames=frames)
