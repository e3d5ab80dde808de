"""VideoDataset: the documented split-directory layout, every task at once."""
import logging
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from hvlm.registry import DATASETS, TRANSFORMS
from .annotations import (METADATA_FILE, TASK_FILES, cached, caption_words,
                          parse_metadata, parse_task_file)
from .demo_data import DEMO_DOMAINS, ensure_demo_data
from .exceptions import VideoReadError
from .worker_tracker import note_loading

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mkv', '.mov', '.webm')
# Domain of every video when a split has no metadata.json.
DEFAULT_DOMAIN = 'general'


def _build_vocabularies(videos: dict, annotations: dict) -> dict:
    """``classes``, ``answers``, ``words`` and ``domains`` of a split read
    by :meth:`VideoDataset._read_split`."""
    classes = {
        a['label']
        for items in annotations.get('action_detection', {}).values()
        for a in items
    }
    answers = {
        q['answer']
        for items in annotations.get('video_qa', {}).values()
        for q in items
    }
    words = {
        w
        for items in annotations.get('video_captioning', {}).values()
        for c in items
        for w in caption_words(c['text'])
    }
    other_domains = {v['domain'] for v in videos.values()} - set(DEMO_DOMAINS)
    return dict(
        classes=tuple(sorted(classes)),
        answers=tuple(sorted(answers)),
        words=tuple(sorted(words)),
        domains=DEMO_DOMAINS + tuple(sorted(other_domains)))


@DATASETS.register_module()
class VideoDataset(BaseDataset):
    """Videos with any subset of action, QA and caption annotations.

    Layout of ``data_root`` (one split)::

        videos/<video_id>.mp4          (or .avi .mkv .mov .webm)
        annotations/metadata.json      [{"video_id", "domain", "duration",
                                         "fps"?, "width"?, "height"?}]
        annotations/action_detection.json
            [{"video_id", "actions": [{"start", "end", "label",
                                       "confidence"?}]}]
        annotations/video_qa.json
            [{"video_id", "qa_pairs": [{"question", "answer",
                                        "answer_id"?}]}]
        annotations/video_captioning.json
            [{"video_id", "captions": [{"text", "time": [start, end]}]}]

    Every file is optional. The split's videos are the metadata entries, or,
    without metadata.json, the files in ``videos/`` (domain ``'general'``,
    duration unknown). A task entry naming any other video is an error; a
    metadata entry whose file is missing is not (it is skipped when loaded,
    see ``on_bad_video``). All files are validated when the dataset is
    built, raising :class:`AnnotationError` that names file, entry, field.

    ``metainfo`` (saved in checkpoints as ``dataset_meta``) holds the
    vocabularies, built from ``vocab_root``'s annotations unless given:
    ``classes`` (sorted action labels), ``answers`` (sorted answer strings),
    ``words`` (sorted lower-cased caption words, see
    :func:`caption_words`) and ``domains`` (the four demo domains, then any
    other sorted). They are built at construction even with
    ``lazy_init=True``, because models need them before the first sample.

    One data info (the input of ``pipeline``)::

        dict(video_id='sports_training_0003',
             filename='<data_root>/videos/sports_training_0003.mp4',
             domain='sports', domain_id=1, duration=7.4,
             actions=[dict(start=0.0, end=2.7, label='roll_right',
                           label_id=5, confidence=0.93), ...],
             qa_pairs=[dict(question=..., answer='red', answer_id=9), ...],
             captions=[dict(text=..., start=0.0, end=2.7), ...],
             tasks={'action_detection', 'video_qa'},
             classes=metainfo['classes'])

    ``answer_id`` is the index in ``answers`` (-1 if absent); ``label_id``
    the index in ``classes`` (-1 if absent); ``tasks`` lists the requested
    tasks the video is annotated for.

    Every item is ``dict(inputs, data_samples, skipped)``. ``skipped`` lists
    ``(filename, reason)`` of the unreadable videos met while producing it.
    With ``on_bad_video='skip'`` a training item replaces an unreadable video
    by a random other one (up to ``max_refetch`` times), and a test item is
    the placeholder ``dict(inputs=None, data_samples=None, skipped=[...])``
    that :func:`video_collate` drops; with ``'error'`` the
    :class:`VideoReadError` naming the file propagates.

    Args:
        data_root (str): The split directory.
        pipeline (list): Transforms (configs or callables).
        tasks (Sequence[str]): Tasks to load, a subset of
            ``('action_detection', 'video_qa', 'video_captioning')``.
        domains (Sequence[str], optional): Keep only videos of these domains.
        vocab_root (str, optional): Split directory whose annotations define
            the vocabularies (the training split's, so that every split
            shares its index spaces). A bare name without a path separator
            is a sibling split of ``data_root``: ``'training'`` means
            ``<data_root>/../training``, so overriding ``data_root`` alone
            keeps the splits paired (write ``./name`` for a directory in
            the working directory). Defaults to ``data_root``.
        metainfo (dict, optional): Explicit ``classes`` / ``answers`` /
            ``words`` / ``domains``; they override the built ones.
        demo (dict, optional): ``ensure_demo_data`` arguments including
            ``root``; when ``data_root`` lies under ``root`` the demo data is
            generated first (once). Ignored for other data roots.
        on_bad_video (str): ``'skip'`` (warn and go on) or ``'error'``.
        video_dir (str): Videos directory, relative to ``data_root``.
        ann_dir (str): Annotations directory, relative to ``data_root``.
        test_mode (bool): No re-sampling of unreadable videos.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments
            (``indices``, ``serialize_data``, ``lazy_init``,
            ``max_refetch``, ...).
    """

    TASKS = tuple(TASK_FILES)

    def __init__(self,
                 data_root: str,
                 pipeline: Sequence = (),
                 tasks: Sequence[str] = TASKS,
                 domains: Optional[Sequence[str]] = None,
                 vocab_root: Optional[str] = None,
                 metainfo: Optional[dict] = None,
                 demo: Optional[dict] = None,
                 on_bad_video: str = 'skip',
                 video_dir: str = 'videos',
                 ann_dir: str = 'annotations',
                 test_mode: bool = False,
                 **kwargs) -> None:
        if isinstance(tasks, str):
            tasks = (tasks, )
        unknown = [t for t in tasks if t not in self.TASKS]
        if unknown:
            raise ValueError(f'VideoDataset: tasks={tuple(tasks)} contains '
                             f'unknown {unknown}; expected a subset of '
                             f'{self.TASKS}')
        if on_bad_video not in ('skip', 'error'):
            raise ValueError(f'VideoDataset: on_bad_video={on_bad_video!r} '
                             "must be 'skip' or 'error'")
        if isinstance(domains, str):
            domains = (domains, )
        self.tasks = tuple(tasks)
        self.domains = None if domains is None else tuple(domains)
        self.on_bad_video = on_bad_video
        self.video_dir = video_dir
        self.ann_dir = ann_dir
        if demo is not None:
            self._maybe_generate_demo(data_root, demo)
        self.vocab_root = self._resolve_vocab_root(data_root, vocab_root)
        # (real path, split) read for the vocabularies, kept for
        # load_data_list when it runs right away: the split is usually the
        # dataset's own (the training set, or vocab_root not set).
        self._split_read: Optional[Tuple[str, Tuple[dict, dict]]] = None
        self._keep_split = not kwargs.get('lazy_init', False)
        super().__init__(
            ann_file='',
            metainfo=metainfo,
            data_root=data_root,
            # Built from hvlm's registry, so the pipeline resolves whatever
            # default scope the caller has set.
            pipeline=[
                TRANSFORMS.build(t) if isinstance(t, dict) else t
                for t in pipeline
            ],
            test_mode=test_mode,
            **kwargs)

    # ------------------------------------------------------------------
    # Construction
    # ------------------------------------------------------------------
    @staticmethod
    def _maybe_generate_demo(data_root: str, demo: dict) -> None:
        if 'root' not in demo:
            raise ValueError(f'VideoDataset: demo={demo} needs a "root" key '
                             '(the directory ensure_demo_data fills)')
        kwargs = dict(demo)
        root = osp.abspath(kwargs.pop('root'))
        if osp.commonpath([root, osp.abspath(data_root)]) == root:
            ensure_demo_data(root, **kwargs)

    @staticmethod
    def _resolve_vocab_root(data_root: str, vocab_root: Optional[str]) -> str:
        if vocab_root is None:
            return data_root
        if os.sep in vocab_root or (os.altsep and os.altsep in vocab_root):
            return vocab_root
        return osp.join(osp.dirname(osp.normpath(data_root)), vocab_root)

    def _read_split(self, split_root: str) -> Tuple[dict, dict]:
        """Parse and validate one split directory.

        Returns ``(videos, annotations)``: ``video_id -> dict(domain,
        duration, filename)`` and ``task -> {video_id: [item, ...]}`` for
        every task file present.
        """
        ann_dir = osp.join(split_root, self.ann_dir)
        video_dir = osp.join(split_root, self.video_dir)
        files = {}
        if osp.isdir(video_dir):
            for name in sorted(os.listdir(video_dir)):
                stem, ext = osp.splitext(name)
                if ext.lower() in VIDEO_EXTENSIONS:
                    files.setdefault(stem, osp.join(video_dir, name))
        meta_path = osp.join(ann_dir, METADATA_FILE)
        videos = {}
        if osp.isfile(meta_path):
            for vid, info in parse_metadata(meta_path).items():
                filename = files.get(vid, osp.join(video_dir, vid + '.mp4'))
                videos[vid] = dict(
                    domain=info['domain'],
                    duration=info['duration'],
                    filename=filename)
        else:
            for vid, filename in files.items():
                videos[vid] = dict(
                    domain=DEFAULT_DOMAIN, duration=None, filename=filename)
        if not videos and not osp.isdir(split_root):
            raise FileNotFoundError(
                f'VideoDataset: split directory {split_root} does not exist; '
                f'expected {self.video_dir}/ and {self.ann_dir}/ in it')
        annotations = {}
        for task, (name, _) in TASK_FILES.items():
            path = osp.join(ann_dir, name)
            if osp.isfile(path):
                annotations[task] = parse_task_file(path, task, videos)
        return videos, annotations

    def _load_metainfo(self, metainfo: Optional[dict] = None) -> dict:
        """Explicit ``metainfo`` entries, the rest built from vocab_root.

        The vocabularies are cached by the identity of the split's files
        (:func:`hvlm.datasets.annotations.cached`): the validation and test
        datasets build theirs from the training split, as the training
        dataset has just done.
        """
        given = super()._load_metainfo(metainfo)

        def build() -> dict:
            split = self._read_split(self.vocab_root)
            if self._keep_split:
                self._split_read = (osp.realpath(self.vocab_root), split)
            return _build_vocabularies(*split)

        ann_dir = osp.join(self.vocab_root, self.ann_dir)
        # the video directory: its names are the videos without metadata
        files = [osp.join(self.vocab_root, self.video_dir)] + [
            osp.join(ann_dir, name)
            for name in (METADATA_FILE, ) + tuple(n for n, _ in
                                                   TASK_FILES.values())
        ]
        built = cached('vocabularies', files, build)
        for key, value in given.items():
            built[key] = tuple(value) if isinstance(value, list) else value
        return built

    def load_data_list(self) -> List[dict]:
        """One data info per video, see the class docstring."""
        meta = self._metainfo
        kept, self._split_read = self._split_read, None
        if kept is not None and kept[0] == osp.realpath(self.data_root):
            videos, annotations = kept[1]
        else:
            videos, annotations = self._read_split(self.data_root)
        domains = list(meta['domains'])
        if self.domains is not None:
            unknown = [d for d in self.domains if d not in domains]
            if unknown:
                raise ValueError(
                    f'VideoDataset: domains={self.domains} contains '
                    f'{unknown}, not among metainfo domains {tuple(domains)}')
        classes = {c: i for i, c in enumerate(meta['classes'])}
        answers = {a: i for i, a in enumerate(meta['answers'])}
        unknown_domains = set()
        data_list = []
        for vid, video in videos.items():
            if self.domains is not None and \
                    video['domain'] not in self.domains:
                continue
            if video['domain'] not in domains:
                unknown_domains.add(video['domain'])
            info = dict(
                video_id=vid,
                filename=video['filename'],
                domain=video['domain'],
                domain_id=domains.index(video['domain'])
                if video['domain'] in domains else -1,
                duration=video['duration'],
                actions=[],
                qa_pairs=[],
                captions=[],
                tasks=set())
            if 'action_detection' in self.tasks and \
                    vid in annotations.get('action_detection', {}):
                info['tasks'].add('action_detection')
                info['actions'] = [
                    dict(a, label_id=classes.get(a['label'], -1))
                    for a in annotations['action_detection'][vid]
                ]
            if 'video_qa' in self.tasks and \
                    vid in annotations.get('video_qa', {}):
                info['tasks'].add('video_qa')
                info['qa_pairs'] = [
                    dict(q, answer_id=answers.get(q['answer'], -1))
                    for q in annotations['video_qa'][vid]
                ]
            if 'video_captioning' in self.tasks and \
                    vid in annotations.get('video_captioning', {}):
                info['tasks'].add('video_captioning')
                info['captions'] = list(annotations['video_captioning'][vid])
            data_list.append(info)
        if not data_list and videos:
            raise ValueError(self._no_video_in_domains(videos))
        if not data_list:
            raise ValueError(
                f'VideoDataset: no videos in {self.data_root}; '
                f'expected entries in {self.ann_dir}/{METADATA_FILE} or '
                f'files ending in {VIDEO_EXTENSIONS} in {self.video_dir}/')
        if unknown_domains:
            print_log(
                f'VideoDataset({self.data_root}): domains '
                f'{sorted(unknown_domains)} are not in metainfo domains '
                f'{tuple(domains)}; their videos get domain_id=-1',
                logger='current',
                level=logging.WARNING)
        return data_list

    def _no_video_in_domains(self, videos: Dict[str, dict]) -> str:
        """Why the ``domains`` filter left nothing, and the two ways out."""
        found: Dict[str, int] = {}
        for video in videos.values():
            found[video['domain']] = found.get(video['domain'], 0) + 1
        counts = ', '.join(f'{d!r} ({n})' for d, n in sorted(found.items()))
        metadata = osp.join(self.data_root, self.ann_dir, METADATA_FILE)
        why = '' if osp.isfile(metadata) else (
            f'; without {metadata} every video is domain {DEFAULT_DOMAIN!r}')
        return (
            f'VideoDataset({self.data_root}): none of its {len(videos)} '
            f'videos is in domains {self.domains}: their domains are '
            f'{counts}{why}. Either train on the domains the data has: set '
            'the dataset\'s domains for each split, e.g. --cfg-options '
            'train_dataloader.dataset.domains=None (every video) or '
            f'"train_dataloader.dataset.domains=[\'{sorted(found)[0]}\']" '
            '(and the same for val_dataloader and test_dataloader), or '
            f'configs/hier_general.py, which filters no domain; or name each '
            f'video\'s domain in {metadata}: '
            '[{"video_id": "<file name without extension>", '
            '"domain": "sports", "duration": <seconds>}, ...]')

    # ------------------------------------------------------------------
    # Items
    # ------------------------------------------------------------------
    def get_data_info(self, idx: int) -> dict:
        """The data info of ``idx``, plus ``classes`` for label-mapping
        transforms such as Flip (added here, not stored per video)."""
        info = super().get_data_info(idx)
        info['classes'] = self._metainfo['classes']
        return info

    def __getitem__(self,
                    idx: Union[int, Tuple[int, int]]) -> Dict[str, Any]:
        """``dict(inputs, data_samples, skipped)``; see the class docstring.

        ``idx`` may be ``(index, seed)`` (from ``SeededSampler``): numpy's
        generator, which the random transforms draw from, is then seeded
        with ``seed`` first, so the sample's augmentation is the same
        whichever worker or process (a resumed run) loads it.
        """
        if not self._fully_initialized:
            self.full_init()
        if isinstance(idx, tuple):
            idx, seed = idx
            np.random.seed(seed)
        skipped: List[Tuple[str, str]] = []
        for _ in range(self.max_refetch + 1):
            note_loading(self.get_data_info(idx)['filename'])
            try:
                data = self.prepare_data(idx)
            except VideoReadError as e:
                if self.on_bad_video == 'error':
                    raise
                skipped.append((e.filename, e.reason))
                print_log(
                    f'Skipping unreadable video {e.filename}: {e.reason}',
                    logger='current',
                    level=logging.WARNING)
                if self.test_mode:
                    return dict(
                        inputs=None, data_samples=None, skipped=skipped)
                idx = self._rand_another()
                continue
            if data is None:  # a transform chose to drop this sample
                if self.test_mode:
                    raise RuntimeError(
                        f'VideoDataset: the test pipeline returned None for '
                        f'{self.get_data_info(idx)["filename"]}; test '
                        'pipelines must not filter samples')
                idx = self._rand_another()
                continue
            data['skipped'] = skipped
            return data
        raise RuntimeError(
            f'VideoDataset({self.data_root}): no readable video after '
            f'{self.max_refetch + 1} tries (max_refetch={self.max_refetch}); '
            f'skipped {skipped}')
