"""ImageFolderDataset: ``data_root/<class>/<image>``, labelled or not."""
import logging
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from hvlm.registry import DATASETS, TRANSFORMS
from .demo_images import ensure_demo_images
from .exceptions import VideoReadError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff',
                    '.webp')


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Images in one folder per class, for classification or, unlabelled,
    for self-supervised pretraining on the same folders.

    Layout of ``data_root`` (one split)::

        <class>/<image>.png|.jpg|...     e.g. disc/img_0001.png

    ``classes`` (``metainfo``, saved in checkpoints as ``dataset_meta``)
    are the sorted class folders of ``vocab_root`` (the training split's,
    so every split shares one index space; a bare name is a sibling of
    ``data_root`` as in :class:`VideoDataset`), unless given in
    ``metainfo``. A class folder of ``data_root`` that is not a class is an
    error naming it.

    ``split_file`` (optional) lists the images to use, one
    ``<class>/<image>`` path relative to ``data_root`` per line (blank lines
    and ``#`` comments ignored); a line naming an unknown class is an error
    naming the file and line. ``shots_per_class=K`` keeps K images of every
    class drawn with ``shot_seed`` (few-label fine-tuning).

    ``labelled=False`` (pretraining): every image under ``data_root``, in
    class folders or not, with label ``-1``; no classes are needed.

    Items are ``dict(inputs, data_samples, skipped)`` as in
    :class:`VideoDataset`: an unreadable image (``ImageReadError``) is
    skipped with a warning, counted by ``SkippedVideoHook`` through
    ``video_collate`` and never modified or deleted; a training item takes
    another image instead, a test item is a placeholder the collate drops.
    With ``on_bad_image='error'`` the error naming the file propagates.

    One data info (the input of ``pipeline``)::

        dict(filename='<data_root>/disc/img_0001.png', label=0,
             class_name='disc')

    Args:
        data_root (str): The split directory.
        pipeline (list): Transforms (configs or callables).
        labelled (bool): Read labels from the class folders.
        split_file (str, optional): List of images to use.
        vocab_root (str, optional): Split whose folders are the classes.
        metainfo (dict, optional): Explicit ``classes``.
        shots_per_class (int, optional): Keep this many images per class.
        shot_seed (int): Seed of the per-class draw.
        demo (dict, optional): ``ensure_demo_images`` arguments with
            ``root``; when ``data_root`` lies under ``root`` the demo images
            are generated first (once).
        on_bad_image (str): ``'skip'`` or ``'error'``.
        test_mode (bool): Placeholders instead of re-sampling bad images.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments.
    """

    def __init__(self,
                 data_root: str,
                 pipeline: Sequence = (),
                 labelled: bool = True,
                 split_file: Optional[str] = None,
                 vocab_root: Optional[str] = None,
                 metainfo: Optional[dict] = None,
                 shots_per_class: Optional[int] = None,
                 shot_seed: int = 0,
                 demo: Optional[dict] = None,
                 on_bad_image: str = 'skip',
                 test_mode: bool = False,
                 **kwargs) -> None:
        if on_bad_image not in ('skip', 'error'):
            raise ValueError(f'ImageFolderDataset: on_bad_image='
                             f"{on_bad_image!r} must be 'skip' or 'error'")
        if shots_per_class is not None and shots_per_class < 1:
            raise ValueError(f'shots_per_class={shots_per_class} must be '
                             '>= 1 (or None for every image)')
        if not labelled and shots_per_class is not None:
            raise ValueError('shots_per_class needs labelled=True')
        self.labelled = labelled
        self.split_file = split_file
        self.shots_per_class, self.shot_seed = shots_per_class, shot_seed
        self.on_bad_image = on_bad_image
        if demo is not None:
            kwargs_demo = dict(demo)
            if 'root' not in kwargs_demo:
                raise ValueError(f'ImageFolderDataset: demo={demo} needs a '
                                 '"root" key')
            root = osp.abspath(kwargs_demo.pop('root'))
            if osp.commonpath([root, osp.abspath(data_root)]) == root:
                ensure_demo_images(root, **kwargs_demo)
        if vocab_root is None:
            vocab_root = data_root
        elif os.sep not in vocab_root:
            vocab_root = osp.join(osp.dirname(osp.normpath(data_root)),
                                  vocab_root)
        self.vocab_root = vocab_root
        metainfo = dict(metainfo or {})
        if labelled and not metainfo.get('classes'):
            metainfo['classes'] = tuple(self._class_folders(vocab_root))
            if not metainfo['classes']:
                raise ValueError(f'ImageFolderDataset: {vocab_root} has no '
                                 'class folders (expected <class>/<image>)')
        super().__init__(
            ann_file='',
            metainfo=metainfo,
            data_root=data_root,
            pipeline=[
                TRANSFORMS.build(t) if isinstance(t, dict) else t
                for t in pipeline
            ],
            test_mode=test_mode,
            **kwargs)

    @staticmethod
    def _class_folders(root: str) -> List[str]:
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'ImageFolderDataset: {root} is not a directory')
        return sorted(d for d in os.listdir(root)
                      if not d.startswith('.')
                      and osp.isdir(osp.join(root, d)))

    def _listed(self) -> List[str]:
        """Relative paths of the split's images."""
        root = self.data_root
        if self.split_file is not None:
            paths = []
            with open(self.split_file) as f:
                for line_no, line in enumerate(f, 1):
                    line = line.split('#', 1)[0].strip()
                    if line:
                        paths.append((line_no, line))
            if self.labelled:
                classes = set(self._metainfo['classes'])
                for line_no, path in paths:
                    head = path.replace('\\', '/').split('/')[0]
                    if '/' not in path or head not in classes:
                        raise ValueError(
                            f'{self.split_file}, line {line_no}: {path!r} '
                            'is not <class>/<image> with a class of '
                            f'{self.vocab_root}')
            return [p for _, p in paths]
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
            rel = osp.relpath(dirpath, root)
            depth = 0 if rel == '.' else rel.count(os.sep) + 1
            if self.labelled and depth != 1:
                continue
            found += [
                osp.normpath(osp.join(rel, f)) for f in sorted(filenames)
                if f.lower().endswith(IMAGE_EXTENSIONS)
            ]
        return found

    def load_data_list(self) -> List[dict]:
        """One data info per image, see the class docstring."""
        if self.labelled:
            classes = list(self._metainfo['classes'])
            unknown = [
                d for d in self._class_folders(self.data_root)
                if d not in classes
            ]
            if unknown and self.split_file is None:
                raise ValueError(
                    f'ImageFolderDataset: class folders {unknown} of '
                    f'{self.data_root} are not classes of {self.vocab_root} '
                    f'({classes})')
        infos = []
        for path in self._listed():
            info = dict(filename=osp.join(self.data_root, path), label=-1)
            if self.labelled:
                name = path.replace('\\', '/').split('/')[0]
                info.update(label=classes.index(name), class_name=name)
            infos.append(info)
        if self.shots_per_class is not None:
            rng = np.random.default_rng(self.shot_seed)
            keep = []
            for label in range(len(classes)):
                idx = [i for i, d in enumerate(infos) if d['label'] == label]
                rng.shuffle(idx)
                keep += idx[:self.shots_per_class]
            infos = [infos[i] for i in sorted(keep)]
        if not infos:
            raise ValueError(f'ImageFolderDataset: no image found in '
                             f'{self.data_root}' + (
                                 f' (split file {self.split_file})'
                                 if self.split_file else ''))
        return infos

    def __getitem__(self,
                    idx: Union[int, Tuple[int, int]]) -> Dict[str, Any]:
        """``dict(inputs, data_samples, skipped)``; ``idx`` may be
        ``(index, seed)`` from ``SeededSampler``."""
        if not self._fully_initialized:
            self.full_init()
        if isinstance(idx, tuple):
            idx, seed = idx
            np.random.seed(seed)
        skipped: List[Tuple[str, str]] = []
        for _ in range(self.max_refetch + 1):
            try:
                data = self.prepare_data(idx)
            except VideoReadError as e:  # ImageReadError included
                if self.on_bad_image == 'error':
                    raise
                skipped.append((e.filename, e.reason))
                print_log(
                    f'Skipping unreadable image {e.filename}: {e.reason}',
                    logger='current',
                    level=logging.WARNING)
                if self.test_mode:
                    return dict(
                        inputs=None, data_samples=None, skipped=skipped)
                idx = self._rand_another()
                continue
            data['skipped'] = skipped
            return data
        raise RuntimeError(
            f'ImageFolderDataset({self.data_root}): no readable image after '
            f'{self.max_refetch + 1} tries; skipped {skipped}')
