"""Tiny recognition data sets in the formats users have, with real video
files, for the recognition tests."""
import os
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np

# classInd.txt order (label order) differs from sorted order, as in the
# real UCF-101 (HammerThrow is 35, Hammering 36 there).
UCF_CLASSES = ('HammerThrow', 'Hammering', 'ApplyEyeMakeup', 'YoYo')


def write_video(path: str, frames: int = 12, size: int = 32,
                value: int = 0) -> None:
    """A real h264 video of ``frames`` frames whose colour encodes
    ``value``."""
    from hvlm.datasets.demo_data import _write_mp4
    os.makedirs(osp.dirname(path), exist_ok=True)
    rng = np.random.default_rng(value)
    clip = np.empty((frames, size, size, 3), np.uint8)
    clip[:] = rng.integers(0, 255, 3, dtype=np.uint8)
    clip[:, :size // 2, :size // 2] = 255 - clip[0, 0, 0]
    _write_mp4(path, clip, 10)


def write_ucf(root: str, per_class: Dict[str, int] = None,
              test_per_class: int = 1,
              classes: Sequence[str] = UCF_CLASSES) -> Dict[str, str]:
    """UCF-101's layout under ``root``: ``UCF-101/<Class>/*.avi`` and
    ``ucfTrainTestlist/{classInd,trainlist01,testlist01}.txt``. Returns
    the paths (``videos``, ``class_index``, ``train``, ``test``)."""
    per_class = per_class or {c: 3 for c in classes}
    videos = osp.join(root, 'UCF-101')
    lists = osp.join(root, 'ucfTrainTestlist')
    os.makedirs(lists, exist_ok=True)
    train: List[str] = []
    test: List[str] = []
    for label, name in enumerate(classes):
        for g in range(per_class.get(name, 0) + test_per_class):
            rel = f'{name}/v_{name}_g{g + 1:02d}_c01.avi'
            write_video(osp.join(videos, rel), value=label)
            if g < per_class.get(name, 0):
                train.append(f'{rel} {label + 1}')
            else:
                test.append(rel)
    paths = dict(
        videos=videos,
        class_index=osp.join(lists, 'classInd.txt'),
        train=osp.join(lists, 'trainlist01.txt'),
        test=osp.join(lists, 'testlist01.txt'))
    with open(paths['class_index'], 'w') as f:
        f.writelines(f'{i + 1} {c}\n' for i, c in enumerate(classes))
    with open(paths['train'], 'w') as f:
        f.write('\r\n'.join(train) + '\r\n')  # as distributed: CRLF
    with open(paths['test'], 'w') as f:
        f.write('\r\n'.join(test) + '\r\n')
    return paths
