"""Speed of the scene-graph evaluator and of the scene-graph models.

Two measurements, each beside its baseline from the same run:

- :class:`SceneGraphRecall` (vectorised per frame with numpy) against
  :func:`loop_recall`, a straightforward per-frame loop over triplets in
  plain Python of the same definition (STTran's ``evaluation_recall.py``
  walks frames the same way); both score the same synthetic predictions,
  and their recalls must agree before any time is reported.
- one training step (forward, loss, backward, AdamW step) per frame of
  every scene-graph model that has a demo config
  (``configs/scene_graph/<model>_predcls_demo.py``) and is registered in
  ``MODELS``, beside STTran's.
"""
import os.path as osp
import statistics
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from hvlm.evaluation.metrics.scene_graph_recall import SceneGraphRecall

__all__ = ['synthetic_videos', 'loop_recall', 'benchmark_evaluator',
           'benchmark_training', 'format_scene_graph_benchmark']

NUM_ATT, NUM_SPA, NUM_CON = 3, 6, 17
PERSON = 1


def synthetic_videos(videos: int = 50, frames: int = 8, objects: int = 3,
                     seed: int = 0) -> List[dict]:
    """Ground truth and predictions in :class:`SceneGraphRecall`'s format:
    per frame a person and ``objects`` objects (36 classes); predicted
    boxes are the true ones moved by up to a third of their size (some
    then miss IoU 0.5), one label in ten is wrong, scores are random."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(videos):
        T, M = frames, frames * objects
        xy = rng.uniform(0, 300, (T + M, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(20, 150, (T + M, 2))],
                               1)
        labels = rng.integers(2, 37, M)
        wrong = rng.random(M) < 0.1
        size = np.tile(boxes[:, 2:] - boxes[:, :2], 2)
        pred_boxes = boxes + rng.uniform(-1 / 3, 1 / 3, boxes.shape) * size
        of = np.repeat(np.arange(T), objects)
        out.append(dict(
            person_boxes=boxes[:T], obj_frames=of, obj_boxes=boxes[T:],
            obj_labels=labels, attention=rng.integers(0, NUM_ATT, M),
            spatial=(rng.random((M, NUM_SPA)) < 0.25).astype(np.uint8),
            contacting=(rng.random((M, NUM_CON)) < 0.1).astype(np.uint8),
            pred_boxes=pred_boxes,
            pred_box_frames=np.concatenate([np.arange(T), of]),
            pred_labels=np.concatenate(
                [np.full(T, PERSON),
                 np.where(wrong, rng.integers(2, 37, M), labels)]),
            pred_scores=np.concatenate([np.ones(T), rng.uniform(.3, 1, M)]),
            pred_pairs=np.stack([of, T + np.arange(M)], 1),
            pred_attention=rng.dirichlet(np.ones(NUM_ATT), M),
            pred_spatial=rng.random((M, NUM_SPA)),
            pred_contacting=rng.random((M, NUM_CON))))
    return out


def _iou(a, b) -> float:
    """IoU of two xyxy boxes, +1 pixel convention, in plain Python."""
    w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    area = lambda x: (x[2] - x[0] + 1) * (x[3] - x[1] + 1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def loop_recall(videos: Sequence[dict], ks: Sequence[int],
                constraints: Sequence[str], semi_threshold: float = 0.9,
                iou_threshold: float = 0.5) -> Dict[str, float]:
    """R@K and mR@K frame by frame, triplet by triplet, in plain Python:
    the definitions of :class:`SceneGraphRecall`, written out."""
    groups = ((NUM_ATT, 0, 'attention'), (NUM_SPA, NUM_ATT, 'spatial'),
              (NUM_CON, NUM_ATT + NUM_SPA, 'contacting'))
    per_frame = {(c, k): [] for c in constraints for k in ks}
    hits = {(c, k): [0] * 26 for c in constraints for k in ks}
    count = [0] * 26
    for v in videos:
        v = {k: np.asarray(x).tolist() for k, x in v.items()}
        for t, person in enumerate(v['person_boxes']):
            gt = []  # (subject class, predicate, object class, sbox, obox)
            for m, f in enumerate(v['obj_frames']):
                if f != t:
                    continue
                ob, oc = v['obj_boxes'][m], v['obj_labels'][m]
                gt.append((PERSON, v['attention'][m], oc, person, ob))
                for p, on in enumerate(v['spatial'][m]):
                    if on:
                        gt.append((oc, NUM_ATT + p, PERSON, ob, person))
                for p, on in enumerate(v['contacting'][m]):
                    if on:
                        gt.append((PERSON, NUM_ATT + NUM_SPA + p, oc,
                                   person, ob))
            if not gt:
                continue
            for g in gt:
                count[g[1]] += 1
            for c in constraints:
                cands = []
                for i, (s, o) in enumerate(v['pred_pairs']):
                    if v['pred_box_frames'][s] != t:
                        continue
                    for size, offset, name in groups:
                        sc = v[f'pred_{name}'][i]
                        if c == 'with' or (c == 'semi' and offset == 0):
                            picks = [max(range(size), key=lambda j: (
                                sc[j], -j))]
                        elif c == 'semi':
                            picks = [j for j in range(size)
                                     if sc[j] > semi_threshold]
                        else:
                            picks = list(range(size))
                        for j in picks:
                            a, b = (o, s) if name == 'spatial' else (s, o)
                            score = v['pred_scores'][a] * \
                                v['pred_scores'][b] * sc[j]
                            cands.append((score, v['pred_labels'][a],
                                          offset + j, v['pred_labels'][b],
                                          v['pred_boxes'][a],
                                          v['pred_boxes'][b]))
                cands.sort(key=lambda x: -x[0])  # stable, as numpy's
                if c == 'no':
                    cands = cands[:100]
                for k in ks:
                    found = 0
                    for g in gt:
                        for p in cands[:k]:
                            if p[1:4] == g[:3] and \
                                    _iou(p[4], g[3]) >= iou_threshold and \
                                    _iou(p[5], g[4]) >= iou_threshold:
                                found += 1
                                hits[(c, k)][g[1]] += 1
                                break
                    per_frame[(c, k)].append(found / len(gt))
    out = {}
    present = [i for i in range(26) if count[i]]
    for (c, k), values in per_frame.items():
        out[f'{c}_R@{k}'] = sum(values) / len(values)
        out[f'{c}_mR@{k}'] = sum(hits[(c, k)][i] / count[i]
                                 for i in present) / len(present)
    return out


def benchmark_evaluator(videos: int = 50, frames: int = 8, objects: int = 3,
                        ks: Sequence[int] = (10, 20, 50, 100),
                        constraints: Sequence[str] = ('with', 'semi', 'no'),
                        repeats: int = 3) -> Dict[str, object]:
    """Frames per second of :class:`SceneGraphRecall` (``process`` and
    ``compute_metrics``) and of :func:`loop_recall` on the same data,
    alternating, median of ``repeats``; raises if their recalls differ."""
    data = synthetic_videos(videos, frames, objects)
    metric = SceneGraphRecall(ks=ks, constraints=constraints)
    times = {'SceneGraphRecall': [], 'per-frame loop': []}
    results = {}
    for _ in range(repeats):
        start = time.perf_counter()
        metric.results.clear()
        metric.process(None, data)
        results['SceneGraphRecall'] = metric.compute_metrics(metric.results)
        times['SceneGraphRecall'].append(time.perf_counter() - start)
        start = time.perf_counter()
        results['per-frame loop'] = loop_recall(data, ks, constraints)
        times['per-frame loop'].append(time.perf_counter() - start)
    a, b = results['SceneGraphRecall'], results['per-frame loop']
    differ = {k: (a[k], b[k]) for k in a if abs(a[k] - b[k]) > 1e-9}
    if differ:
        raise AssertionError(f'the evaluator and the loop disagree: {differ}')
    total = videos * frames
    seconds = {k: statistics.median(v) for k, v in times.items()}
    return dict(frames=total, seconds=seconds,
                frames_per_second={k: total / s for k, s in seconds.items()},
                speedup=seconds['per-frame loop'] /
                seconds['SceneGraphRecall'],
                recalls=a)


def _demo_config(name: str, config_dir: str) -> Optional[str]:
    path = osp.join(config_dir, f'{name.lower()}_predcls_demo.py')
    return path if osp.isfile(path) else None


def _batch(videos: int, frames: int, objects: int, scale, seed: int):
    rng = np.random.default_rng(seed)
    H, W = scale
    inputs, samples = [], []
    for _ in range(videos):
        M = frames * objects
        xy = rng.uniform(0, 0.6, (frames + M, 2)) * [W * 4 / 3, H * 4 / 3]
        boxes = np.concatenate(
            [xy, xy + rng.uniform(0.1, 0.3, (frames + M, 2)) * [W, H]], 1)
        inputs.append(torch.from_numpy(rng.integers(
            0, 255, (frames, 3, H, W), dtype=np.uint8)))
        samples.append(dict(
            video_id='synthetic', img_shape=(H * 4 // 3, W * 4 // 3),
            scale_factor=(0.75, 0.75),
            person_boxes=torch.tensor(boxes[:frames], dtype=torch.float32),
            obj_frames=torch.arange(frames).repeat_interleave(objects),
            obj_boxes=torch.tensor(boxes[frames:], dtype=torch.float32),
            obj_labels=torch.from_numpy(rng.integers(2, 37, M)),
            attention=torch.from_numpy(rng.integers(0, 3, M)),
            spatial=torch.from_numpy((rng.random((M, 6)) < .3).astype(
                np.uint8)),
            contacting=torch.from_numpy((rng.random((M, 17)) < .2).astype(
                np.uint8))))
    return inputs, samples


def benchmark_training(config_dir: str,
                       models: Sequence[str] = ('STTran', 'TEMPURA', 'STKET',
                                                'SceneLLM'),
                       videos: int = 2, frames: int = 8, objects: int = 3,
                       iters: int = 5, warmup: int = 1,
                       extra: Optional[Dict[str, dict]] = None
                       ) -> Dict[str, object]:
    """Median seconds per frame of one training step of each model in
    ``models`` that is registered and has a demo config (others, and those
    whose files are missing, e.g. SceneLLM's demo LM, are listed as
    ``skipped``), on the same synthetic batch, round-robin.

    ``extra`` adds variants: ``{'STTran per-frame': dict(config='STTran',
    temporal_layer=0)}`` builds STTran's config with those model keys.
    """
    from mmengine.config import Config
    from mmengine.logging import print_log

    from hvlm.registry import MODELS
    from hvlm.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    built, skipped, scale = {}, [], None
    variants = {m: dict(config=m) for m in models}
    variants.update(extra or {})
    for name, spec in variants.items():
        spec = dict(spec)
        base = spec.pop('config')
        path = _demo_config(base, config_dir)
        if MODELS.get(base) is None or path is None:
            skipped.append(name)
            continue
        cfg = Config.fromfile(path)
        scale = tuple(cfg.get('frame_scale', (72, 96)))
        model_cfg = dict(cfg.model)
        model_cfg.update(spec)
        torch.manual_seed(0)
        try:
            model = MODELS.build(model_cfg)
        except FileNotFoundError as e:
            # SceneLLM's demo LM is written by tools/misc/train_demo_lm.py
            print_log(f'benchmark_training: {name} skipped: {e}',
                      logger='current', level=30)
            skipped.append(name)
            continue
        model.train()
        built[name] = (model, torch.optim.AdamW(model.parameters(), 1e-4))
    if not built:
        return dict(seconds_per_frame={}, skipped=skipped)
    inputs, samples = _batch(videos, frames, objects, scale, seed=0)
    for model, _ in built.values():
        if hasattr(model, 'set_priors'):
            # STKET: priors counted on the synthetic batch (their values do
            # not change the step's cost; SceneGraphPriorsHook counts them on
            # the training split in a real run)
            from hvlm.datasets import count_scene_priors
            model.set_priors(count_scene_priors(
                [{k: v.numpy() if torch.is_tensor(v) else v
                  for k, v in s.items()} for s in samples],
                model.num_classes))

    def step(name: str) -> float:
        model, optim = built[name]
        start = time.perf_counter()
        losses = model(inputs, samples, mode='loss')
        optim.zero_grad()
        sum(losses.values()).backward()
        optim.step()
        return time.perf_counter() - start

    times = {n: [] for n in built}
    for i in range(warmup + iters):
        for name in built:
            t = step(name)
            if i >= warmup:
                times[name].append(t)
    per_frame = {n: statistics.median(ts) / (videos * frames)
                 for n, ts in times.items()}
    first = next(iter(per_frame))
    return dict(seconds_per_frame=per_frame, baseline=first,
                ratio={n: s / per_frame[first] for n, s in per_frame.items()},
                skipped=skipped, videos=videos, frames=frames,
                objects=objects, scale=scale)


def format_scene_graph_benchmark(evaluator: Dict, training: Dict) -> str:
    """Both benchmarks as a plain-text table."""
    lines = [f"Evaluator on {evaluator['frames']} synthetic frames "
             '(equal recalls checked):']
    for name, fps in evaluator['frames_per_second'].items():
        lines.append(f'  {name:<20s} {fps:10.1f} frames/s  '
                     f"({evaluator['seconds'][name]:.3f} s)")
    lines.append(f"  speedup of SceneGraphRecall over the loop: "
                 f"{evaluator['speedup']:.1f}x")
    r = evaluator['recalls']
    lines.append('  recalls (both): ' + ', '.join(
        f'{k}={r[k]:.4f}' for k in ('with_R@20', 'semi_R@20', 'no_R@50')
        if k in r))
    sec = training.get('seconds_per_frame', {})
    if sec:
        lines.append(
            f"Training step per frame ({training['videos']} videos x "
            f"{training['frames']} frames x {training['objects']} objects, "
            f"frames {training['scale']}):")
        for name, s in sec.items():
            lines.append(f'  {name:<20s} {s * 1e3:8.2f} ms/frame  '
                         f"{training['ratio'][name]:.2f}x "
                         f"{training['baseline']}")
    if training.get('skipped'):
        lines.append('  not measured (not registered or no demo config): '
                     + ', '.join(training['skipped']))
    return '\n'.join(lines)
