"""See what the pipeline feeds the model: sampled frames and their labels.

Behind ``tools/analysis_tools/browse_dataset.py``. A video is loaded by
running the dataset's own pipeline one transform at a time, so the frames
shown are exactly the ones a training or test step gets, and the frames as
first decoded (before resizing and cropping) are kept beside them::

    video = load_video(dataset, 0)        # BrowsedVideo
    grid, cells = frame_grid(video.frames, ncols=video.clip_len, scale=2)
    image = draw_video(video, phase='pipeline')   # RGB uint8 [H, W, 3]

:func:`frame_grid` is pure numpy (frame pixels are copied, or repeated
``scale`` times, never resampled), so a test can compare each cell with the
frames decord decodes. :func:`draw_video` then writes the annotations on
that grid with mmengine's :class:`~mmengine.visualization.Visualizer`.
"""
import math
import os
import os.path as osp
import textwrap
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config

__all__ = [
    'SPLITS', 'BrowsedVideo', 'build_split_dataset', 'packed_frames',
    'load_video', 'frame_grid', 'draw_video', 'browse_dataset'
]

SPLITS = dict(
    train='train_dataloader', val='val_dataloader', test='test_dataloader')
PHASES = ('pipeline', 'original')

# Display: a strip of STRIP_LINES text lines under every frame, then a text
# panel under the grid. Sizes in pixels (fonts in points at the
# Visualizer's 100 dpi, so ~1.4 px per point).
STRIP_LINES = 2
LINE_HEIGHT = 13
FONT_SIZE = 8
PANEL_MIN_WIDTH = 640
CHAR_WIDTH = 6  # a generous average glyph width at FONT_SIZE, for wrapping
MARGIN = 4
BACKGROUND = 32  # dark grey


@dataclass
class BrowsedVideo:
    """One video as the pipeline produced it.

    ``decoded`` holds the frames as first decoded (``[N, H, W, 3]``, RGB
    uint8, before any resize or crop) and ``frames`` the frames the model
    receives (``[N, h, w, 3]``, denormalised to uint8 when the pipeline
    normalises), with ``N = num_clips * clip_len`` rows in the order of
    ``frame_inds``. ``frame_labels`` is the action name at each frame
    (``''`` where no action covers it).
    """
    index: int
    video_id: str
    filename: str
    domain: str
    frame_inds: np.ndarray
    frame_times: np.ndarray
    clip_len: int
    num_clips: int
    decoded: np.ndarray
    frames: np.ndarray
    frame_labels: List[str]
    actions: List[dict] = field(default_factory=list)
    qa_pairs: List[dict] = field(default_factory=list)
    captions: List[dict] = field(default_factory=list)


def build_split_dataset(cfg: Config, split: str):
    """Build the :class:`VideoDataset` of ``cfg``'s ``split`` loader, as the
    runner would (training vocabularies shared with val/test).

    Dataset wrappers (``RepeatDataset(dataset=...)``) are looked through:
    the innermost video dataset is built.

    Raises:
        KeyError: ``split`` is unknown or the config has no such loader.
    """
    from mmengine.registry import init_default_scope

    from hvlm.registry import DATASETS
    from hvlm.utils import register_all_modules
    from hvlm.utils.config import find_video_dataset, share_vocabulary

    if split not in SPLITS:
        raise KeyError(f'split {split!r} is not one of {sorted(SPLITS)}')
    key = SPLITS[split]
    loader = cfg.get(key)
    if not loader or not loader.get('dataset'):
        raise KeyError(f'the config has no {key}.dataset; cannot browse '
                       f'the {split!r} split')
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'hvlm'))
    share_vocabulary(cfg)
    dataset_cfg = find_video_dataset(cfg[key].dataset)
    if dataset_cfg is None:
        raise KeyError(f'{key}.dataset has no data_root, in itself or in a '
                       'wrapped dataset=...; expected a VideoDataset config')
    return DATASETS.build(dataset_cfg)


def _input_format(dataset) -> Optional[str]:
    """The ``input_format`` of the pipeline's FormatShape, if any."""
    for transform in getattr(dataset.pipeline, 'transforms', ()):
        if hasattr(transform, 'input_format'):
            return transform.input_format
    return None


def packed_frames(inputs,
                  input_format: Optional[str],
                  mean: Optional[Sequence[float]] = None,
                  std: Optional[Sequence[float]] = None) -> np.ndarray:
    """Turn a pipeline's packed ``inputs`` back into frames.

    Args:
        inputs: ``[num_clips, C, T, H, W]`` (``'NCTHW'``),
            ``[num_clips, T, C, H, W]`` (``'NTCHW'``) or, without
            FormatShape (``input_format=None``), ``[N, H, W, C]``.
        input_format: FormatShape's ``input_format``.
        mean, std: Per-channel statistics on the 0-255 scale, used to
            undo normalisation when ``inputs`` are floating point.

    Returns:
        np.ndarray: uint8 ``[num_clips * T, H, W, C]``, clip-major.
    """
    imgs = np.asarray(inputs)
    if input_format == 'NCTHW':
        imgs = imgs.transpose(0, 2, 3, 4, 1)  # [N, T, H, W, C]
    elif input_format == 'NTCHW':
        imgs = imgs.transpose(0, 1, 3, 4, 2)  # [N, T, H, W, C]
    elif input_format is not None:
        raise ValueError(f'input_format={input_format!r}: expected '
                         "'NCTHW', 'NTCHW' or None")
    imgs = imgs.reshape((-1, ) + imgs.shape[-3:])  # [N*T, H, W, C]
    if imgs.dtype == np.uint8:
        return np.ascontiguousarray(imgs)
    imgs = imgs.astype(np.float64)
    if mean is not None and std is not None:
        imgs = imgs * np.asarray(std) + np.asarray(mean)
    return np.clip(np.round(imgs), 0, 255).astype(np.uint8)


def load_video(dataset,
               index: int,
               mean: Optional[Sequence[float]] = None,
               std: Optional[Sequence[float]] = None) -> BrowsedVideo:
    """Run ``dataset``'s pipeline on item ``index``, keeping the decoded
    frames (the first ``imgs`` a transform produces) and the packed ones.

    Raises:
        VideoReadError: the video cannot be read (it names the file).
        RuntimeError: a transform dropped the sample (returned None).
    """
    results = dataset.get_data_info(index)
    decoded, clip_len = None, None
    for transform in dataset.pipeline.transforms:
        results = transform(results)
        if results is None:
            raise RuntimeError(
                f'{transform!r} dropped item {index} '
                f'({dataset.get_data_info(index)["filename"]})')
        if decoded is None and 'imgs' in results:
            decoded = np.array(results['imgs'], copy=True)  # [N, H, W, 3]
        if 'clip_len' in results:
            clip_len = int(results['clip_len'])
    if 'data_samples' not in results:
        raise RuntimeError('the pipeline does not end with PackVideoInputs: '
                           f'its output has keys {sorted(results)}')
    sample = results['data_samples']
    meta = sample.metainfo
    frames = packed_frames(results['inputs'], _input_format(dataset), mean,
                           std)
    n = len(meta['frame_inds'])
    if frames.shape[0] != n:
        raise RuntimeError(
            f'{meta["filename"]}: the pipeline packed {frames.shape[0]} '
            f'frames for {n} sampled frame indices')
    clip_len = clip_len or n
    # Ground truth as packed (after any label-changing transform).
    classes = dataset.metainfo['classes']
    labels = [
        classes[i] if i >= 0 else '' for i in sample.gt_frame_labels.tolist()
    ]
    actions = []
    if 'gt_segments' in sample:
        for (start, end), label in zip(sample.gt_segments.tolist(),
                                       sample.gt_segment_labels.tolist()):
            actions.append(
                dict(
                    start=start,
                    end=end,
                    label=classes[label] if label >= 0 else '?'))
    return BrowsedVideo(
        index=index,
        video_id=meta['video_id'],
        filename=meta['filename'],
        domain=meta['domain'],
        frame_inds=np.asarray(meta['frame_inds']),
        frame_times=np.asarray(meta['frame_times']),
        clip_len=clip_len,
        num_clips=n // clip_len,
        decoded=decoded,
        frames=frames,
        frame_labels=labels,
        actions=actions,
        qa_pairs=list(sample.get('gt_qa', [])),
        captions=list(sample.get('gt_captions', [])))


def auto_scale(frame_shape: Tuple[int, int], min_side: int = 96) -> int:
    """Smallest integer upscaling that shows the short side of a frame
    ``(H, W)`` with at least ``min_side`` pixels (room for its labels)."""
    return max(1, math.ceil(min_side / max(min(frame_shape), 1)))


def frame_grid(frames: np.ndarray,
               ncols: int,
               scale: int = 1,
               strip_height: int = STRIP_LINES * LINE_HEIGHT + MARGIN,
               gap: int = MARGIN) -> Tuple[np.ndarray, List[Tuple[int, int]]]:
    """Lay frames out row by row, with an empty strip under each for text.

    Args:
        frames: uint8 ``[N, H, W, C]``.
        ncols: Frames per row (``clip_len`` puts one clip per row).
        scale: Every pixel is repeated ``scale`` times in both directions.
        strip_height: Pixels left under every frame for its labels.
        gap: Pixels between cells and around the grid.

    Returns:
        tuple: the grid (uint8 ``[rows * (H*scale + strip + gap) + gap,
        cols * (W*scale + gap) + gap, C]``, background dark grey) and the
        ``(x, y)`` top-left corner of every frame in it.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise ValueError(f'frames must be uint8 [N, H, W, C]; got '
                         f'{frames.dtype} {list(frames.shape)}')
    if ncols < 1 or scale < 1:
        raise ValueError(f'ncols={ncols} and scale={scale} must be >= 1')
    n, h, w, c = frames.shape
    ncols = min(ncols, max(n, 1))
    rows = math.ceil(n / ncols)
    cell_w, cell_h = w * scale + gap, h * scale + strip_height + gap
    grid = np.full((rows * cell_h + gap, ncols * cell_w + gap, c),
                   BACKGROUND,
                   dtype=np.uint8)
    corners = []
    for i, frame in enumerate(frames):
        x = gap + (i % ncols) * cell_w
        y = gap + (i // ncols) * cell_h
        big = frame.repeat(scale, axis=0).repeat(scale, axis=1)
        grid[y:y + h * scale, x:x + w * scale] = big  # [H*s, W*s, C]
        corners.append((x, y))
    return grid, corners


def _describe(video: BrowsedVideo, phase: str) -> List[str]:
    """The lines of the panel under the grid."""
    frames = video.frames if phase == 'pipeline' else video.decoded
    lines = [
        f'{video.video_id}   domain: {video.domain}   phase: {phase}   '
        f'{video.num_clips} clip(s) x {video.clip_len} frames, '
        f'{frames.shape[2]}x{frames.shape[1]} px   '
        f'({osp.basename(video.filename)})'
    ]
    for a in video.actions:
        lines.append(f'action {a["start"]:.1f}-{a["end"]:.1f} s: '
                     f'{a["label"]}')
    for q in video.qa_pairs:
        lines.append(f'Q: {q["question"]}   A: {q["answer"]}')
    for c in video.captions:
        lines.append(f'caption {c["start"]:.1f}-{c["end"]:.1f} s: '
                     f'{c["text"]}')
    if len(lines) == 1:
        lines.append('(no action, QA or caption annotation)')
    return lines


def draw_video(video: BrowsedVideo,
               phase: str = 'pipeline',
               scale: Optional[int] = None) -> np.ndarray:
    """The browse image of one video: the frame grid, each frame's index,
    time and action label under it, and the video's domain, actions, QA
    pairs and captions (with their segment times) below.

    Args:
        video: From :func:`load_video`.
        phase: ``'pipeline'`` (frames after the transforms) or
            ``'original'`` (as decoded, before resizing and cropping).
        scale: Pixel repetition of the frames; default :func:`auto_scale`.

    Returns:
        np.ndarray: RGB uint8 ``[H, W, 3]``.
    """
    from mmengine.visualization import Visualizer

    if phase not in PHASES:
        raise ValueError(f'phase={phase!r} is not one of {PHASES}')
    frames = video.frames if phase == 'pipeline' else video.decoded
    if scale is None:
        scale = auto_scale(frames.shape[1:3])
    grid, corners = frame_grid(frames, ncols=video.clip_len, scale=scale)
    cell_w = frames.shape[2] * scale
    wrap = max(cell_w // CHAR_WIDTH, 4)
    width = max(grid.shape[1], PANEL_MIN_WIDTH)
    panel_lines = []
    for line in _describe(video, phase):
        panel_lines += textwrap.wrap(
            line, (width - 2 * MARGIN) // CHAR_WIDTH,
            subsequent_indent='    ') or ['']
    canvas = np.full(
        (grid.shape[0] + len(panel_lines) * LINE_HEIGHT + 2 * MARGIN,
         width, 3),
        BACKGROUND,
        dtype=np.uint8)
    canvas[:grid.shape[0], :grid.shape[1]] = grid

    texts, positions, colors = [], [], []
    for (x, y), ind, t, label in zip(corners, video.frame_inds,
                                     video.frame_times, video.frame_labels):
        top = y + frames.shape[1] * scale + 1
        texts += [f'#{int(ind)} {float(t):.2f}s'[:wrap], (label or '-')[:wrap]]
        positions += [(x, top), (x, top + LINE_HEIGHT)]
        colors += ['white', 'yellow' if label else 'gray']
    for i, line in enumerate(panel_lines):
        texts.append(line)
        positions.append((MARGIN, grid.shape[0] + MARGIN + i * LINE_HEIGHT))
        colors.append('white')
    visualizer = Visualizer(name=f'browse_dataset_{os.getpid()}')
    visualizer.set_image(canvas)
    visualizer.draw_texts(
        texts,
        np.array(positions, dtype=np.float64),
        font_sizes=FONT_SIZE,
        colors=colors,
        font_families='monospace')
    image = visualizer.get_image()
    visualizer.close()
    return image


def browse_dataset(dataset,
                   output_dir: str,
                   max_videos: int = 8,
                   phase: str = 'pipeline',
                   mean: Optional[Sequence[float]] = None,
                   std: Optional[Sequence[float]] = None,
                   scale: Optional[int] = None,
                   prefix: str = '') -> Dict[str, List]:
    """Write one browse image per video for the first ``max_videos`` items.

    Unreadable videos are reported, not drawn.

    Returns:
        dict: ``written`` (paths of the PNG files) and ``skipped``
        (``(filename, reason)`` of the unreadable videos).
    """
    import cv2

    from hvlm.datasets.exceptions import VideoReadError

    if max_videos < 1:
        raise ValueError(f'max_videos={max_videos} must be >= 1')
    os.makedirs(output_dir, exist_ok=True)
    written, skipped = [], []
    for index in range(min(max_videos, len(dataset))):
        try:
            video = load_video(dataset, index, mean, std)
        except VideoReadError as e:
            skipped.append((e.filename, e.reason))
            continue
        image = draw_video(video, phase, scale)
        path = osp.join(output_dir,
                        f'{prefix}{index:04d}_{video.video_id}.png')
        if not cv2.imwrite(path, image[..., ::-1]):
            raise OSError(f'could not write {path}')
        written.append(path)
    return dict(written=written, skipped=skipped)
