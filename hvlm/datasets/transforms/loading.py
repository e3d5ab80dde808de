"""Open a video, choose frame indices, decode them.

decord readers are opened here, inside the DataLoader worker, and dropped as
soon as the frames are decoded: a reader created in the parent process and
used after ``fork`` hangs or kills the worker.
"""
import os
import os.path as osp
from typing import Dict

import numpy as np
from mmcv.transforms import BaseTransform

from hvlm.registry import TRANSFORMS
from ..exceptions import VideoReadError

try:
    from decord._ffi.base import DECORDError
except ImportError:  # a decord build without the private module
    DECORDError = RuntimeError

# decord raises either of these for unreadable files; DECORDError is not a
# RuntimeError subclass.
_DECORD_ERRORS = (RuntimeError, DECORDError)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


@TRANSFORMS.register_module()
class DecordInit(BaseTransform):
    """Open a video with decord.

    Required keys: ``filename``.
    Added keys: ``video_reader`` (``decord.VideoReader``), ``total_frames``
    (int), ``avg_fps`` (float), ``original_shape`` (``(H, W)``).

    Raises:
        VideoReadError: The file is missing, empty, not a video, has no
            frames or an invalid frame rate.

    Args:
        num_threads (int): Decoding threads per reader; 1 suits DataLoader
            workers, which already run in parallel.
    """

    def __init__(self, num_threads: int = 1) -> None:
        self.num_threads = num_threads

    def transform(self, results: Dict) -> Dict:
        filename = results['filename']
        if not osp.exists(filename):
            raise VideoReadError(filename, 'file does not exist')
        if osp.isdir(filename):
            raise VideoReadError(filename, 'is a directory, not a video file')
        if os.path.getsize(filename) == 0:
            raise VideoReadError(filename, 'file is empty (0 bytes)')
        import decord  # imported in the worker, see the module docstring
        try:
            reader = decord.VideoReader(filename, num_threads=self.num_threads)
            total = len(reader)
            fps = float(reader.get_avg_fps())
            first = reader[0].shape if total > 0 else None
        except _DECORD_ERRORS as e:
            raise VideoReadError(
                filename, f'decord cannot open it as a video '
                f'({type(e).__name__}: {_first_line(e)})') from None
        if total == 0:
            raise VideoReadError(filename, 'contains no video frames')
        if not np.isfinite(fps) or fps <= 0:
            raise VideoReadError(filename,
                                 f'reports an invalid frame rate {fps}')
        results['video_reader'] = reader
        results['total_frames'] = total
        results['avg_fps'] = fps
        results['original_shape'] = tuple(first[:2])  # (H, W)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(num_threads={self.num_threads})'


@TRANSFORMS.register_module()
class SampleFrames(BaseTransform):
    """Choose ``num_clips`` clips of ``clip_len`` frames each.

    A clip is ``clip_len`` frames ``frame_interval`` apart. In training the
    clips start at random offsets (one per equal part of the video, so they
    still cover it); in test mode they are evenly spaced from the first to
    the last possible start (one clip: centred), hence deterministic. A video
    shorter than ``clip_len * frame_interval`` frames gets a smaller interval
    so the clip fits; one with fewer than ``clip_len`` frames is unusable.

    Required keys: ``total_frames``, ``avg_fps`` (and ``filename`` for
    errors).
    Added keys: ``frame_inds`` (int64 ``[num_clips * clip_len]``, clip-major),
    ``frame_times`` (float64 seconds, ``frame_inds / avg_fps``), ``clip_len``,
    ``frame_interval`` (the one used), ``num_clips``.

    Raises:
        VideoReadError: The video has fewer than ``clip_len`` frames.

    Args:
        clip_len (int): Frames per clip.
        frame_interval (int): Step between the frames of a clip.
        num_clips (int): Clips per video.
        test_mode (bool): Deterministic, evenly spaced clips.
    """

    def __init__(self,
                 clip_len: int,
                 frame_interval: int = 1,
                 num_clips: int = 1,
                 test_mode: bool = False) -> None:
        for name, value in (('clip_len', clip_len),
                            ('frame_interval', frame_interval), ('num_clips',
                                                                 num_clips)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'SampleFrames: {name}={value!r} must be a '
                                 'positive integer')
        self.clip_len = clip_len
        self.frame_interval = frame_interval
        self.num_clips = num_clips
        self.test_mode = test_mode

    def transform(self, results: Dict) -> Dict:
        total = int(results['total_frames'])
        if total < self.clip_len:
            raise VideoReadError(
                results.get('filename', '<unknown>'),
                f'has {total} frames, fewer than clip_len={self.clip_len}')
        interval = self.frame_interval
        if self.clip_len > 1:
            fitting = (total - 1) // (self.clip_len - 1)
            interval = max(1, min(interval, fitting))
        span = (self.clip_len - 1) * interval + 1  # frames one clip covers
        max_offset = total - span
        if self.test_mode:
            if self.num_clips == 1:
                offsets = np.array([max_offset // 2])
            else:
                offsets = np.round(np.linspace(0, max_offset, self.num_clips))
        else:
            # One random start inside each of num_clips equal parts.
            edges = np.linspace(0, max_offset + 1, self.num_clips + 1)
            low = np.floor(edges[:-1])
            high = np.maximum(np.floor(edges[1:]), low + 1)
            offsets = np.floor(low + np.random.rand(self.num_clips) *
                               (high - low))
            offsets = np.minimum(offsets, max_offset)
        offsets = offsets.astype(np.int64)  # [num_clips]
        steps = np.arange(self.clip_len, dtype=np.int64) * interval
        inds = (offsets[:, None] + steps[None, :]).reshape(-1)  # [N*T]
        results['frame_inds'] = inds
        results['frame_times'] = inds / float(results['avg_fps'])
        results['clip_len'] = self.clip_len
        results['frame_interval'] = interval
        results['num_clips'] = self.num_clips
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(clip_len={self.clip_len}, '
                f'frame_interval={self.frame_interval}, '
                f'num_clips={self.num_clips}, test_mode={self.test_mode})')


@TRANSFORMS.register_module()
class DecordDecode(BaseTransform):
    """Decode the sampled frames and release the reader.

    Each distinct index is decoded once (in increasing order, which is what
    decord seeks fastest), then put back in ``frame_inds`` order.

    Required keys: ``video_reader``, ``frame_inds`` (and ``filename``).
    Removed keys: ``video_reader``.
    Added keys: ``imgs`` (uint8 ``[N, H, W, 3]``, RGB, one row per entry of
    ``frame_inds``), ``img_shape`` (``(H, W)``).

    Raises:
        VideoReadError: decord fails on the frames (e.g. a truncated file).
    """

    def transform(self, results: Dict) -> Dict:
        reader = results.pop('video_reader')
        inds = np.asarray(results['frame_inds'], dtype=np.int64)
        unique, inverse = np.unique(inds, return_inverse=True)
        try:
            frames = reader.get_batch(unique.tolist()).asnumpy()  # [U,H,W,3]
        except _DECORD_ERRORS as e:
            raise VideoReadError(
                results.get('filename', '<unknown>'),
                f'decoding frames {unique.min()}..{unique.max()} failed '
                f'({type(e).__name__}: {_first_line(e)})') from None
        finally:
            del reader
        if frames.shape[0] != unique.size:
            raise VideoReadError(
                results.get('filename', '<unknown>'),
                f'decord returned {frames.shape[0]} frames for '
                f'{unique.size} requested indices')
        imgs = frames[inverse.reshape(-1)]  # [N, H, W, 3]
        results['imgs'] = np.ascontiguousarray(imgs)
        results['img_shape'] = tuple(imgs.shape[1:3])
        return results


@TRANSFORMS.register_module()
class SampleSegmentFrames(SampleFrames):
    """:class:`SampleFrames` inside one segment of the video.

    The segment is ``results['segment']`` (start, end in seconds, as
    :class:`VideoTextDataset` writes it); the frames whose times
    ``index / avg_fps`` fall in ``[start, end)`` are the video sampled, the
    same way :class:`SampleFrames` samples a whole one (a segment shorter
    than the clip gets a smaller interval, one with fewer than
    ``clip_len`` frames is unusable). Without ``segment`` the whole video is
    sampled.

    Required keys: ``total_frames``, ``avg_fps``; ``segment`` optional.
    Added keys: those of :class:`SampleFrames`.
    """

    def transform(self, results: Dict) -> Dict:
        segment = results.get('segment')
        if segment is None:
            return super().transform(results)
        total = int(results['total_frames'])
        fps = float(results['avg_fps'])
        first = min(max(int(np.ceil(segment[0] * fps - 1e-6)), 0), total)
        stop = min(max(int(np.ceil(segment[1] * fps - 1e-6)), first), total)
        inner = dict(results, total_frames=stop - first)
        try:
            inner = super().transform(inner)
        except VideoReadError as e:
            raise VideoReadError(
                results.get('filename', '<unknown>'),
                f'segment {tuple(segment)} s has {stop - first} frames, '
                f'fewer than clip_len={self.clip_len}') from e
        inds = inner['frame_inds'] + first
        results.update(inner, total_frames=total, frame_inds=inds,
                       frame_times=inds / fps)
        return results


@TRANSFORMS.register_module()
class SampleText(BaseTransform):
    """Choose the text a segment is paired with.

    In training, a segment with both a caption and a label text gets its
    caption with probability ``caption_prob`` and its label text otherwise
    (numpy's generator, seeded per sample by ``SeededSampler``); with one of
    them, that one. In test mode the caption is preferred, so retrieval is
    scored on captions; zero-shot classification uses ``label_id`` and the
    class texts, not this text.

    Required keys: ``caption``, ``label_text`` (either may be None).
    Added keys: ``text``.
    """

    def __init__(self, caption_prob: float = 0.5,
                 test_mode: bool = False) -> None:
        if not 0 <= caption_prob <= 1:
            raise ValueError(
                f'SampleText: caption_prob={caption_prob} must be in [0, 1]')
        self.caption_prob = caption_prob
        self.test_mode = test_mode

    def transform(self, results: Dict) -> Dict:
        caption, label = results.get('caption'), results.get('label_text')
        if caption is None and label is None:
            raise ValueError(
                f'SampleText: {results.get("video_id")} segment '
                f'{results.get("segment")} has neither caption nor label')
        if caption is None or label is None:
            text = caption if label is None else label
        elif self.test_mode:
            text = caption
        else:
            text = caption if np.random.rand() < self.caption_prob else label
        results['text'] = text
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(caption_prob={self.caption_prob}, '
                f'test_mode={self.test_mode})')
