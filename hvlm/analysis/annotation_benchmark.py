"""How long a run takes to read large annotation files before its first
iteration, against the time to parse each file once.

``tools/analysis_tools/benchmark_annotations.py`` is the CLI. A synthetic
training and validation split (annotations only, no videos) in the layout
of :class:`hvlm.datasets.VideoDataset` is written into a temporary
directory; then, in the same process:

* the baseline: every annotation file of both splits parsed and validated
  once (``parse_metadata`` / ``parse_task_file``, bypassing the cache);
* the run: the cache emptied (and on, whatever ``HVLM_ANNOTATION_CACHE_MB``
  says), the training and validation datasets built from a config (read
  beforehand) as ``HVLMRunner`` builds them (``share_vocabulary``, then
  ``DATASETS.build``): the training split gives the training videos and
  both datasets' vocabularies;
* optionally the same with the cache off, where the validation set's
  vocabularies parse the training split a second time.

A ratio near 1 means each file is parsed once and the datasets' own work
is small beside it.
"""
import copy
import json
import os
import os.path as osp
import random
import time
from typing import Dict, Optional

from mmengine.config import Config

from hvlm.datasets import annotations
from hvlm.datasets.annotations import (METADATA_FILE, TASK_FILES,
                                       clear_annotation_cache, parse_metadata,
                                       parse_task_file)

__all__ = [
    'write_synthetic_split', 'benchmark_annotations',
    'format_annotation_benchmark'
]

_DOMAINS = ('general', 'sports', 'news', 'tutorials')
_LABELS = tuple(f'action_{i:03d}' for i in range(200))
_WORDS = ('a', 'the', 'person', 'red', 'blue', 'ball', 'moves', 'left',
          'right', 'quickly', 'slowly', 'then', 'turns', 'around', 'stops',
          'near', 'table', 'door', 'camera', 'hand', 'picks', 'up', 'small',
          'large', 'box', 'opens', 'closes', 'walks', 'runs', 'jumps')
_QUESTIONS = ('what happens first', 'what happens at the end',
              'how many actions are there', 'what colour is the object',
              'where does the object move', 'what does the person hold')


def _sentence(rng: random.Random, low: int, high: int) -> str:
    return ' '.join(rng.choice(_WORDS) for _ in range(rng.randint(low, high)))


def write_synthetic_split(split_root: str,
                          num_videos: int,
                          seed: int = 0,
                          prefix: str = 'video') -> Dict[str, int]:
    """Write ``annotations/`` of a split of ``num_videos`` videos.

    Each video has 2-6 actions, 2-4 question/answer pairs and 2-6 captions
    of 6-16 words: about 1.1 kB of JSON per video over the four files, the
    density of the demo data. No video files are written; the datasets do
    not open them until an item is loaded.

    Returns:
        dict[str, int]: File name -> size in bytes.
    """
    rng = random.Random(seed)
    metadata, actions, qa, captions = [], [], [], []
    for i in range(num_videos):
        vid = f'{prefix}_{i:07d}'
        duration = round(rng.uniform(6.0, 120.0), 2)
        metadata.append(
            dict(video_id=vid, domain=rng.choice(_DOMAINS),
                 duration=duration, fps=30.0, width=1280, height=720))
        bounds = sorted(
            round(rng.uniform(0, duration), 2)
            for _ in range(2 * rng.randint(2, 6)))
        actions.append(
            dict(video_id=vid, actions=[
                dict(start=bounds[k], end=bounds[k + 1],
                     label=rng.choice(_LABELS),
                     confidence=round(rng.uniform(0.5, 1.0), 3))
                for k in range(0, len(bounds), 2)
            ]))
        qa.append(
            dict(video_id=vid, qa_pairs=[
                dict(question=rng.choice(_QUESTIONS),
                     answer=rng.choice(_LABELS + _WORDS))
                for _ in range(rng.randint(2, 4))
            ]))
        captions.append(
            dict(video_id=vid, captions=[
                dict(text=_sentence(rng, 6, 16),
                     time=[bounds[k], bounds[k + 1]])
                for k in range(0, len(bounds), 2)
            ]))
    ann_dir = osp.join(split_root, 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    sizes = {}
    for name, entries in ((METADATA_FILE, metadata),
                          (TASK_FILES['action_detection'][0], actions),
                          (TASK_FILES['video_qa'][0], qa),
                          (TASK_FILES['video_captioning'][0], captions)):
        path = osp.join(ann_dir, name)
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(entries, f)
        sizes[name] = osp.getsize(path)
    return sizes


def _parse_split_once(split_root: str) -> None:
    ann_dir = osp.join(split_root, 'annotations')
    known = parse_metadata(osp.join(ann_dir, METADATA_FILE), cache=False)
    for task, (name, _) in TASK_FILES.items():
        parse_task_file(osp.join(ann_dir, name), task, known, cache=False)


def _dataset_configs(config: str, train_root: str, val_root: str) -> list:
    """The train and val dataset configs of ``config`` on the synthetic
    splits, after ``share_vocabulary`` as in ``HVLMRunner.from_cfg``."""
    from hvlm.utils import register_all_modules
    from hvlm.utils.config import find_video_dataset, share_vocabulary
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(config)
    for key, root in (('train_dataloader', train_root),
                      ('val_dataloader', val_root)):
        dataset = find_video_dataset(cfg[key]['dataset'])
        dataset['data_root'] = root
        dataset.pop('demo', None)
        dataset.pop('domains', None)
    share_vocabulary(cfg)
    return [cfg[key]['dataset'] for key in ('train_dataloader',
                                            'val_dataloader')]


def _time_build(dataset_cfgs: list, cache_bytes: int) -> float:
    """Seconds to build the datasets with a cache of ``cache_bytes``."""
    from hvlm.registry import DATASETS
    cache = annotations._CACHE
    saved, cache.max_bytes = cache.max_bytes, cache_bytes
    clear_annotation_cache()
    try:
        start = time.perf_counter()
        for dataset_cfg in dataset_cfgs:
            DATASETS.build(copy.deepcopy(dataset_cfg))
        return time.perf_counter() - start
    finally:
        cache.max_bytes = saved
        clear_annotation_cache()


def benchmark_annotations(work_dir: str,
                          num_videos: int,
                          val_videos: Optional[int] = None,
                          config: str = 'configs/hier_general.py',
                          without_cache: bool = False,
                          seed: int = 0) -> dict:
    """Write the synthetic splits into ``work_dir`` and time both ways.

    Args:
        work_dir (str): An empty directory the splits are written into.
        num_videos (int): Videos of the training split.
        val_videos (int, optional): Videos of the validation split
            (default: a tenth of ``num_videos``, at least 1).
        config (str): Config whose train/val datasets are built.
        without_cache (bool): Also time the build with the cache off.
        seed (int): Seed of the synthetic annotations.

    Returns:
        dict: ``num_videos``, ``val_videos``, ``megabytes`` (all files),
        ``parse_once_s`` (the baseline), ``build_s`` (train and val datasets
        built), ``ratio`` (``build_s / parse_once_s``) and, with
        ``without_cache``, ``build_uncached_s`` and ``ratio_uncached``.
    """
    val_videos = val_videos or max(1, num_videos // 10)
    train_root = osp.join(work_dir, 'training')
    val_root = osp.join(work_dir, 'validation')
    sizes = write_synthetic_split(train_root, num_videos, seed, 'train')
    sizes_val = write_synthetic_split(val_root, val_videos, seed + 1, 'val')
    total = sum(sizes.values()) + sum(sizes_val.values())

    start = time.perf_counter()
    for root in (train_root, val_root):
        _parse_split_once(root)
    parse_once = time.perf_counter() - start
    result = dict(
        num_videos=num_videos,
        val_videos=val_videos,
        megabytes=total / 1e6,
        parse_once_s=parse_once)
    # the config is read and the registries filled before the clock starts:
    # a fixed cost that does not grow with the annotations
    dataset_cfgs = _dataset_configs(config, train_root, val_root)
    cache_bytes = annotations._CACHE.max_bytes or 2**40
    result['build_s'] = _time_build(dataset_cfgs, cache_bytes)
    result['ratio'] = result['build_s'] / parse_once
    if without_cache:
        result['build_uncached_s'] = _time_build(dataset_cfgs, 0)
        result['ratio_uncached'] = result['build_uncached_s'] / parse_once
    return result


def format_annotation_benchmark(result: dict) -> str:
    """The result as a short table, each time beside the baseline's."""
    base = result['parse_once_s']
    rows = [('parse every file once (baseline)', base),
            ('build train + val datasets', result['build_s'])]
    if 'build_uncached_s' in result:
        rows.append(('build them without the parse cache',
                     result['build_uncached_s']))
    lines = [
        f"annotations: {result['num_videos']} training + "
        f"{result['val_videos']} validation videos, "
        f"{result['megabytes']:.1f} MB of JSON"
    ]
    lines += [f'{name:<38}{sec:8.2f} s   x{sec / base:.2f}'
              for name, sec in rows]
    return '\n'.join(lines)
