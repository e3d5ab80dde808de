"""Run a config's frozen stem encoder once over a split and cache its
patch tokens (see :mod:`hvlm.datasets.feature_cache` for the layout)."""
import copy
import logging
import os
import os.path as osp
from typing import Dict, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from hvlm.datasets.feature_cache import (TruncatedFeatureFile, check_index,
                                         config_hash, encoder_identity,
                                         read_index, verify_video_file,
                                         video_file_name, write_index,
                                         write_video_features)
from hvlm.registry import DATASETS, MODELS
from hvlm.utils import register_all_modules
from hvlm.utils.atomic_io import remove_stale_temp_files

__all__ = ['extraction_config', 'extract_features']


def extraction_config(cfg: Config) -> dict:
    """What decides the cached tokens besides the encoder's weights: the
    deterministic sampling pipeline (the test loader's) and the stem's
    options. Its hash is the cache's ``config_hash``."""
    stem = copy.deepcopy(cfg.model.backbone.get('stem'))
    if not stem:
        raise ValueError('model.backbone.stem is not set: feature caching '
                         'needs a pretrained stem encoder')
    stem = {k: v for k, v in dict(stem).items()
            if k not in ('pretrained', 'frames_per_pass')}
    return dict(pipeline=list(cfg.test_dataloader.dataset.pipeline),
                stem=stem)


def extract_features(cfg: Config, split: str, out_dir: str,
                     progress: bool = True) -> Optional[str]:
    """Encode every video of ``cfg.<split>_dataloader.dataset`` with the
    test pipeline's sampling and write one file per video, then the index.

    Videos are shared round-robin between the ranks of a started process
    group (rank ``r`` takes videos ``r::world_size``); rank 0 writes the
    index once all ranks are done. A file that already exists and verifies
    is kept, one cut short is re-made, one made by another encoder or
    config stops the run naming both.

    Returns:
        str: the index path on rank 0, ``None`` on other ranks.
    """
    register_all_modules(init_default_scope=True)
    key = f'{split}_dataloader'
    if key not in cfg or cfg[key] is None:
        raise ValueError(f'the config has no {key}; --split must be one '
                         'of train, val, test')
    settings = extraction_config(cfg)
    digest = config_hash(settings)
    encoder = MODELS.build(cfg.model.backbone.stem)
    encoder.eval()
    identity = encoder_identity(encoder)
    index = read_index(out_dir)
    if index is not None:
        check_index(index, out_dir, identity, digest)
    preprocessor = MODELS.build(
        dict(type='VideoDataPreprocessor', mean=encoder.pixel_mean,
             std=encoder.pixel_std))

    dataset_cfg = copy.deepcopy(cfg[key].dataset)
    dataset_cfg.pipeline = settings['pipeline']
    dataset = DATASETS.build(dataset_cfg)
    infos: Dict[str, dict] = {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        infos.setdefault(info['video_id'], info)
    ids = sorted(infos)
    rank, world = ((dist.get_rank(), dist.get_world_size())
                   if dist.is_available() and dist.is_initialized() else
                   (0, 1))
    video_dir = osp.join(out_dir, 'videos')
    os.makedirs(video_dir, exist_ok=True)
    # partial files of a killed run (never renamed into place); each rank
    # removes only those whose writing process is gone
    for directory in (out_dir, video_dir):
        remove_stale_temp_files(
            directory, lambda msg: print_log(msg, logger='current'))
    mine = ids[rank::world]
    # rank 0's share stands for the progress of all (they are equal +-1)
    bar = ProgressBar(len(mine)) if progress and rank == 0 else None
    made = kept = 0
    for video_id in mine:
        path = osp.join(video_dir, video_file_name(video_id))
        if osp.exists(path):
            try:
                verify_video_file(path, identity, digest)
                kept += 1
                if bar:
                    bar.update()
                continue
            except TruncatedFeatureFile as err:
                print_log(f'{err}; re-making it', logger='current',
                          level=logging.WARNING)
        _encode_one(dataset, infos[video_id], encoder, preprocessor, path,
                    dict(video_id=video_id, encoder=identity,
                         config_hash=digest))
        made += 1
        if bar:
            bar.update()
    # every rank reports (mmengine's logger is quiet off rank 0)
    print(f'\nrank {rank}: {made} videos encoded, {kept} already cached',
          flush=True)
    if world > 1:
        dist.barrier()
    if rank != 0:
        return None
    videos = {}
    for video_id in ids:
        name = video_file_name(video_id)
        verify_video_file(osp.join(video_dir, name), identity, digest)
        videos[video_id] = name
    return write_index(out_dir, identity, settings, videos)


@torch.no_grad()
def _encode_one(dataset, info: dict, encoder, preprocessor, path: str,
                meta: dict) -> None:
    results = dataset.pipeline(copy.deepcopy(info))
    if results is None:
        raise ValueError(f'{info.get("filename")}: the pipeline returned '
                         'nothing (unreadable video?)')
    clips = preprocessor(
        dict(inputs=[results['inputs']],
             data_samples=[results['data_samples']]))['inputs'][0]
    tokens = encoder(clips).patch_tokens  # [num_clips, T, h, w, C]
    sample = results['data_samples']
    meta.update({
        k: sample.metainfo[k]
        for k in ('avg_fps', 'total_frames', 'img_shape')
        if k in sample.metainfo
    })
    write_video_features(path, tokens, sample.metainfo['frame_inds'],
                         sample.metainfo['frame_times'], meta)
