"""Find the videos of a dataset that the loading pipeline cannot read."""
from typing import List, Tuple

import numpy as np
from mmengine.logging import print_log

from .exceptions import VideoReadError
from .transforms import DecordDecode, DecordInit, SampleFrames


def _pipeline_clip_len(dataset) -> int:
    """``clip_len`` of the dataset's SampleFrames (1 if it has none)."""
    for transform in getattr(dataset.pipeline, 'transforms', []):
        if isinstance(transform, SampleFrames):
            return transform.clip_len
    return 1


def check_videos(dataset,
                 num_frames: int = 4,
                 verbose: bool = True) -> List[Tuple[str, str]]:
    """Open every video of ``dataset`` and decode a few frames of it.

    A video fails if it cannot be opened, has fewer frames than the
    pipeline's ``clip_len``, or one of ``num_frames`` frames spread from the
    first to the last cannot be decoded (a truncated file usually fails on
    the last ones).

    Args:
        dataset (VideoDataset): Any dataset whose data infos have
            ``filename``.
        num_frames (int): Frames to decode per video.
        verbose (bool): Log each unreadable video as it is found.

    Returns:
        list[tuple[str, str]]: ``(filename, reason)`` of each unreadable
        video, in dataset order.
    """
    clip_len = _pipeline_clip_len(dataset)
    opener, sizer = DecordInit(), SampleFrames(clip_len, test_mode=True)
    decoder = DecordDecode()
    bad = []
    for idx in range(len(dataset)):
        filename = dataset.get_data_info(idx)['filename']
        results = dict(filename=filename)
        try:
            results = sizer(opener(results))
            total = results['total_frames']
            results['frame_inds'] = np.unique(
                np.linspace(0, total - 1, num_frames).round().astype(np.int64))
            decoder(results)
        except VideoReadError as e:
            bad.append((e.filename, e.reason))
            if verbose:
                print_log(
                    f'unreadable: {e.filename}: {e.reason}', logger='current')
    return bad
