"""RecognitionDataset: one action label per video, from a split file."""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

from mmengine.dataset import BaseDataset

from hvlm.registry import TRANSFORMS
from ..video_dataset import VideoDataset
from .class_names import class_name_to_text, read_class_texts
from .few_shot import base_novel_classes, k_shot_indices

# (path of the video relative to data_root, label, 'file:line' for messages)
Entry = Tuple[str, int, str]


def resolve(data_root: str, path: Optional[str]) -> Optional[str]:
    """``path`` joined to ``data_root`` when relative (mmengine's rule for
    ``ann_file``), kept when absolute or when it exists as given."""
    if not path or osp.isabs(path) or osp.exists(path) or not data_root:
        return path
    return osp.join(data_root, path)


class RecognitionDataset(VideoDataset):
    """Base of the recognition datasets: videos, each with one class.

    A subclass reads its file format in :meth:`read_classes` (the class
    names in label order) and :meth:`read_entries` (one ``(path, label,
    'file:line')`` per video); everything else is shared:

    - ``metainfo``: ``classes`` (the names as the dataset spells them, in
      label order), ``class_texts`` (what a prompt says for each: the names
      through :func:`class_name_to_text`, or the lines of
      ``class_names_file``) and, for a base-to-novel half, ``class_subset``.
    - K-shot: ``k_shot`` videos per class drawn with ``k_shot_seed``
      (:func:`k_shot_indices`).
    - base-to-novel: ``class_subset='base'`` keeps the videos of the first
      half of the classes, ``'novel'`` of the second; labels are renumbered
      from 0 within the half, whose ``classes`` are that half's.
    - unreadable, missing or too-short videos are skipped when loaded and
      counted (``on_bad_video``, as :class:`VideoDataset`); no file is ever
      written, moved or deleted.

    One data info::

        dict(video_id='v_ApplyEyeMakeup_g08_c01',
             filename='<data_root>/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi',
             label=0, domain='general', domain_id=-1, tasks=set(),
             actions=[], qa_pairs=[], captions=[])

    Args:
        ann_file (str): The split file (relative paths are joined to
            ``data_root``).
        data_root (str): The video folder as distributed.
        pipeline (list): Transforms; end with ``PackRecognitionInputs``.
        class_index (str, optional): The file naming the classes, where the
            format has one.
        class_names_file (str, optional): Prompt texts, one line per class
            in label order, replacing the derived ones.
        k_shot (int, optional): Videos per class; ``None``: all.
        k_shot_seed (int): Seed of the K-shot draw.
        on_few_videos (str): ``'take'`` or ``'error'`` when a class has
            fewer than ``k_shot`` videos.
        class_subset (str, optional): ``'base'`` or ``'novel'``.
        on_bad_video (str): ``'skip'`` or ``'error'``.
        test_mode (bool): No re-sampling of unreadable videos.
        vocab_root (str, optional): Ignored by the file formats, whose
            classes come from their class file (hvlm's runner sets it on
            every validation and test dataset; ActionVideoDataset uses it).
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments.
    """

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 pipeline: Sequence = (),
                 class_index: Optional[str] = None,
                 class_names_file: Optional[str] = None,
                 k_shot: Optional[int] = None,
                 k_shot_seed: int = 0,
                 on_few_videos: str = 'take',
                 class_subset: Optional[str] = None,
                 on_bad_video: str = 'skip',
                 test_mode: bool = False,
                 metainfo: Optional[dict] = None,
                 vocab_root: Optional[str] = None,
                 **kwargs) -> None:
        name = type(self).__name__
        if on_bad_video not in ('skip', 'error'):
            raise ValueError(f'{name}: on_bad_video={on_bad_video!r} must '
                             "be 'skip' or 'error'")
        if class_subset is not None:
            base_novel_classes(2, class_subset)  # validates the name
        self.on_bad_video = on_bad_video
        self.k_shot = k_shot
        self.k_shot_seed = k_shot_seed
        self.on_few_videos = on_few_videos
        self.class_subset = class_subset
        self.class_index = resolve(data_root, class_index)
        self.class_names_file = resolve(data_root, class_names_file)
        self._ann_path = resolve(data_root, ann_file)
        self._all_classes: Optional[List[str]] = None
        BaseDataset.__init__(
            self,
            ann_file=self._ann_path,
            metainfo=metainfo,
            data_root=data_root,
            pipeline=[
                TRANSFORMS.build(t) if isinstance(t, dict) else t
                for t in pipeline
            ],
            test_mode=test_mode,
            **kwargs)

    # ------------------------------------------------------------------
    # What a format provides
    # ------------------------------------------------------------------
    def read_classes(self) -> List[str]:
        """Class names in label order."""
        raise NotImplementedError

    def read_entries(self, classes: List[str]) -> List[Entry]:
        """``(path relative to data_root, label, 'file:line')`` per video,
        labels indexing ``classes``."""
        raise NotImplementedError

    # ------------------------------------------------------------------
    # Shared
    # ------------------------------------------------------------------
    def _subset_labels(self, num_classes: int) -> List[int]:
        if self.class_subset is None:
            return list(range(num_classes))
        return base_novel_classes(num_classes, self.class_subset)

    def _load_metainfo(self, metainfo: Optional[dict] = None) -> dict:
        given = BaseDataset._load_metainfo(metainfo)
        if self._all_classes is None:
            self._all_classes = list(self.read_classes())
        classes = self._all_classes
        if self.class_names_file:
            texts = read_class_texts(self.class_names_file, classes)
        else:
            texts = [class_name_to_text(c) for c in classes]
        keep = self._subset_labels(len(classes))
        meta = dict(
            classes=tuple(classes[i] for i in keep),
            class_texts=tuple(texts[i] for i in keep),
            class_subset=self.class_subset)
        for key, value in given.items():
            meta[key] = tuple(value) if isinstance(value, list) else value
        return meta

    def load_data_list(self) -> List[dict]:
        classes = self._all_classes
        entries = self.read_entries(classes)
        keep = self._subset_labels(len(classes))
        new_label = {old: new for new, old in enumerate(keep)}
        entries = [(p, new_label[lab], where) for p, lab, where in entries
                   if lab in new_label]
        if not entries:
            raise ValueError(f'{type(self).__name__}: {self._ann_path} '
                             'lists no video' +
                             (f' of the {self.class_subset} classes'
                              if self.class_subset else ''))
        if self.k_shot is not None:
            picked = k_shot_indices([e[1] for e in entries],
                                    self._metainfo['classes'], self.k_shot,
                                    self.k_shot_seed, self.on_few_videos,
                                    self._ann_path)
            entries = [entries[i] for i in picked]
        data_list = []
        for path, label, _ in entries:
            data_list.append(
                dict(
                    video_id=osp.splitext(osp.basename(path))[0],
                    filename=osp.join(self.data_root, path),
                    label=label,
                    domain='general',
                    domain_id=-1,
                    duration=None,
                    actions=[],
                    qa_pairs=[],
                    captions=[],
                    tasks=set()))
        return data_list


def read_lines(path: str, what: str) -> List[Tuple[int, str]]:
    """``(line number, stripped text)`` of the non-blank lines of ``path``;
    a missing file is an error naming ``what`` it should be."""
    if not path or not osp.isfile(path):
        raise FileNotFoundError(f'{what} {path!r} does not exist')
    with open(path, encoding='utf-8') as f:
        return [(i + 1, line.strip()) for i, line in enumerate(f)
                if line.strip()]
