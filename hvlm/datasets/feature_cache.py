"""On-disk cache of a frozen image encoder's per-frame patch tokens.

Layout of a cache directory::

    DIR/index.json                   {"format": 1, "encoder": ID,
                                      "config_hash": HASH, "config": {...},
                                      "videos": {video_id: file name}}
    DIR/videos/<name>.safetensors    one per video:
        patch_tokens  float32 [num_clips, T, h, w, C]
        frame_inds    int64   [num_clips * T]
        frame_times   float64 [num_clips * T]
        metadata (str -> str): video_id, encoder, config_hash,
                               avg_fps, total_frames, img_shape (JSON)

``ID`` names the encoder (``model_type:directory name:hash``, the hash of
its ``config.json``, the names and sizes of its weight files and the
encoder options that change its output); ``HASH`` is the hash of the
sampling pipeline the frames came from. Sizes rather than modification
times: copying a checkpoint directory changes the times, not the weights.

Every file is written whole to a temporary file and renamed into place
(:func:`atomic_write_bytes`), so a killed extraction leaves only complete
files; :func:`verify_video_file` still checks each one's size against its
header, which is how a file cut short by other means is found and re-made.
"""
import hashlib
import json
import os
import os.path as osp
import re
import struct
from typing import Dict, Optional

import torch
from safetensors.torch import load_file, save

from hvlm.utils.atomic_io import atomic_write_bytes

__all__ = [
    'INDEX_NAME', 'TruncatedFeatureFile', 'encoder_identity', 'config_hash',
    'video_file_name', 'write_video_features', 'verify_video_file',
    'read_video_features', 'write_index', 'read_index', 'check_index'
]

INDEX_NAME = 'index.json'
FORMAT = 1
TENSOR_KEYS = ('patch_tokens', 'frame_inds', 'frame_times')
_WEIGHT_FILE = re.compile(r'.*\.(safetensors|bin|pt|pth|msgpack|h5)$')


class TruncatedFeatureFile(ValueError):
    """A cache file shorter than its header says (or without one): an
    extraction re-makes it, a reader fails naming it."""


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, default=repr)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def encoder_identity(encoder) -> str:
    """``model_type:dir name:hash`` of a built :class:`HFVisionEncoder`."""
    directory = encoder.pretrained
    with open(osp.join(directory, 'config.json'), 'rb') as f:
        config = f.read()
    model_type = json.loads(config).get('model_type', 'unknown')
    weights = sorted((name, osp.getsize(osp.join(directory, name)))
                     for name in os.listdir(directory)
                     if _WEIGHT_FILE.match(name))
    options = dict(
        image_size=list(encoder.image_size),
        interpolate_pos_encoding=encoder.interpolate_pos_encoding)
    key = _digest([hashlib.sha1(config).hexdigest(), weights, options])
    name = osp.basename(osp.normpath(directory))
    return f'{model_type}:{name}:{key}'


def config_hash(config) -> str:
    """Hash of any JSON-able config (the sampling pipeline)."""
    return _digest(config)


def video_file_name(video_id: str) -> str:
    """A file name safe on every file system, readable, and unique even
    when two ids differ only in characters the name cannot hold."""
    readable = re.sub(r'[^A-Za-z0-9_.-]', '_', str(video_id))[:80]
    tag = hashlib.sha1(str(video_id).encode()).hexdigest()[:8]
    return f'{readable}-{tag}.safetensors'


def write_video_features(path: str, patch_tokens: torch.Tensor, frame_inds,
                         frame_times, meta: Dict[str, object]) -> None:
    """Write one video's tokens atomically.

    Args:
        path (str): Target file.
        patch_tokens (Tensor): ``[num_clips, T, h, w, C]``.
        frame_inds, frame_times: ``num_clips * T`` values each.
        meta (dict): ``video_id``, ``encoder``, ``config_hash`` and the
            sampling metadata (``avg_fps``, ``total_frames``,
            ``img_shape``); stored as JSON strings.
    """
    tensors = dict(
        patch_tokens=patch_tokens.detach().float().cpu().contiguous(),
        frame_inds=torch.as_tensor(frame_inds, dtype=torch.int64).reshape(-1),
        frame_times=torch.as_tensor(frame_times,
                                    dtype=torch.float64).reshape(-1))
    metadata = {k: json.dumps(v, default=repr) for k, v in meta.items()}
    atomic_write_bytes(path, save(tensors, metadata=metadata))


def _header(path: str) -> dict:
    """The safetensors header of ``path``; ``ValueError`` naming the file
    when it is shorter than its header says."""
    size = osp.getsize(path)
    with open(path, 'rb') as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise TruncatedFeatureFile(
                f'{path}: {size} bytes, too short for a '
                'safetensors header (truncated)')
        length = struct.unpack('<Q', raw)[0]
        if 8 + length > size:
            raise TruncatedFeatureFile(
                f'{path}: header of {length} bytes but the file '
                f'has {size} (truncated)')
        try:
            header = json.loads(f.read(length))
        except ValueError as err:
            raise TruncatedFeatureFile(f'{path}: unreadable header '
                                       f'({err})') from err
    end = max((v['data_offsets'][1]
               for k, v in header.items() if k != '__metadata__'),
              default=0)
    if 8 + length + end != size:
        raise TruncatedFeatureFile(
            f'{path}: {size} bytes, expected {8 + length + end} '
            'from its header (truncated)')
    return header


def verify_video_file(path: str, encoder: str, config: str) -> None:
    """Check a video file without loading its tensors.

    Raises:
        ValueError: naming the file and the key whose value is wrong
            (truncated, a tensor missing, another encoder or config).
    """
    header = _header(path)
    missing = [k for k in TENSOR_KEYS if k not in header]
    if missing:
        raise ValueError(f'{path}: no tensor {missing[0]!r} (expected '
                         f'{list(TENSOR_KEYS)})')
    meta = {
        k: json.loads(v)
        for k, v in header.get('__metadata__', {}).items()
    }
    for key, want in (('encoder', encoder), ('config_hash', config)):
        if meta.get(key) != want:
            raise ValueError(f'{path}: {key}={meta.get(key)!r}, expected '
                             f'{want!r}')


def read_video_features(path: str, video_id: str, encoder: str,
                        config: str) -> dict:
    """Verify and load one file: its tensors and metadata in one dict."""
    verify_video_file(path, encoder, config)
    data = dict(load_file(path))
    with open(path, 'rb') as f:
        length = struct.unpack('<Q', f.read(8))[0]
        meta = json.loads(f.read(length)).get('__metadata__', {})
    data.update({k: json.loads(v) for k, v in meta.items()})
    if data.get('video_id') != video_id:
        raise ValueError(f'{path}: video_id={data.get("video_id")!r}, '
                         f'expected {video_id!r}')
    return data


def write_index(out_dir: str, encoder: str, config: dict,
                videos: Dict[str, str]) -> str:
    path = osp.join(out_dir, INDEX_NAME)
    index = dict(
        format=FORMAT,
        encoder=encoder,
        config_hash=config_hash(config),
        config=config,
        videos=dict(sorted(videos.items())))
    atomic_write_bytes(path,
                       json.dumps(index, indent=1, default=repr).encode())
    return path


def read_index(out_dir: str) -> Optional[dict]:
    """The index of ``out_dir``, or ``None`` when it has none."""
    path = osp.join(out_dir, INDEX_NAME)
    if not osp.exists(path):
        return None
    try:
        with open(path) as f:
            index = json.load(f)
    except ValueError as err:
        raise ValueError(f'{path}: not valid JSON ({err})') from err
    for key in ('format', 'encoder', 'config_hash', 'videos'):
        if key not in index:
            raise ValueError(f'{path}: no key {key!r}; is this an hvlm '
                             'feature cache?')
    if index['format'] != FORMAT:
        raise ValueError(f'{path}: format={index["format"]!r}, expected '
                         f'{FORMAT}')
    return index


def check_index(index: dict, out_dir: str, encoder: str, config: str) -> None:
    """Refuse a cache made by another encoder or sampling config."""
    path = osp.join(out_dir, INDEX_NAME)
    if index['encoder'] != encoder:
        raise ValueError(
            f'{path} was made by encoder {index["encoder"]!r}, not by '
            f'{encoder!r}; use another cache directory, or delete this one')
    if index['config_hash'] != config:
        raise ValueError(
            f'{path} was made with sampling config_hash='
            f'{index["config_hash"]!r}, not {config!r} (the pipeline '
            'changed); use another cache directory, or delete this one')
