"""Read and validate the annotation files of one split directory.

Every check raises :class:`AnnotationError` naming the file, the entry
(index and ``video_id``), the field, the value found and what was expected,
e.g.::

    data/training/annotations/action_detection.json: entry 3
    (video_id='news_0007'): field 'actions[1].end' is 0.5; expected a number
    >= actions[1].start (1.2)

Parsed forms (all plain Python, JSON-able)::

    parse_metadata(path) -> {video_id: dict(domain=str, duration=float,
                                            fps=float|None, width=int|None,
                                            height=int|None)}
    parse_task_file(path, task, known_ids) -> {video_id: [item, ...]} with
        action_detection  item = dict(start, end, label, confidence)
        video_qa          item = dict(question, answer, answer_id|None)
        video_captioning  item = dict(text, start, end)

Each file is parsed once per process: building a training run reads the
training split for its own videos and again for the vocabularies of every
split, which is minutes of parsing for 100+ MB of annotations. See
:class:`_ResultCache`.
"""
import json
import logging
import math
import os
import os.path as osp
import pickle
from collections import OrderedDict
from typing import (Any, Callable, Collection, Dict, Hashable, List,
                    Optional, Sequence, Tuple)

import numpy as np
from mmengine.logging import print_log

from hvlm.utils.ptb_tokenize import caption_words
from .exceptions import AnnotationError

__all__ = [
    'TASK_FILES', 'load_json_list', 'parse_metadata', 'parse_task_file',
    'cached', 'clear_annotation_cache', 'file_identity', 'caption_words',
    'segment_at_times'
]

# Task name -> (file name, key of the per-video list).
TASK_FILES = {
    'action_detection': ('action_detection.json', 'actions'),
    'video_qa': ('video_qa.json', 'qa_pairs'),
    'video_captioning': ('video_captioning.json', 'captions'),
}
METADATA_FILE = 'metadata.json'


def load_json_list(path: str) -> List[dict]:
    """Load a JSON file whose top level is a list of objects (dicts)."""
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise AnnotationError(
            f'{path}: invalid JSON at line {e.lineno}, column {e.colno}: '
            f'{e.msg}') from None
    except UnicodeDecodeError as e:
        raise AnnotationError(f'{path}: not UTF-8 text ({e})') from None
    if not isinstance(data, list):
        raise AnnotationError(
            f'{path}: top level is a {type(data).__name__}; expected a list '
            'of entries like [{"video_id": ...}, ...]')
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise AnnotationError(
                f'{path}: entry {i} is a {type(entry).__name__} '
                f'({_short(entry)}); expected an object with a "video_id"')
    return data


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + '...'


class _Checker:
    """Type checks for the fields of one entry, with located messages."""

    def __init__(self, path: str, index: int, entry: dict) -> None:
        self.path, self.index, self.entry = path, index, entry
        vid = entry.get('video_id')
        self.video_id = vid if isinstance(vid, str) else None

    def error(self, field: str, value: Any, expected: str) -> AnnotationError:
        where = f'entry {self.index}'
        if self.video_id is not None:
            where += f' (video_id={self.video_id!r})'
        return AnnotationError(f'{self.path}: {where}: field {field!r} is '
                               f'{_short(value)}; expected {expected}')

    def get(self, obj: dict, key: str, field: str, expected: str) -> Any:
        if key not in obj:
            where = f'entry {self.index}'
            if self.video_id is not None:
                where += f' (video_id={self.video_id!r})'
            raise AnnotationError(f'{self.path}: {where}: field {field!r} is '
                                  f'missing; expected {expected}')
        return obj[key]

    def string(self, obj: dict, key: str, field: str) -> str:
        value = self.get(obj, key, field, 'a non-empty string')
        if not isinstance(value, str) or not value.strip():
            raise self.error(field, value, 'a non-empty string')
        return value

    def number(self,
               obj: dict,
               key: str,
               field: str,
               minimum: float = 0.0,
               default: Optional[float] = None) -> Optional[float]:
        expected = f'a finite number >= {minimum}'
        if key not in obj and default is not None:
            return default
        value = self.get(obj, key, field, expected)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value < minimum:
            raise self.error(field, value, expected)
        return float(value)

    def items(self, key: str) -> list:
        value = self.get(self.entry, key, key, 'a list')
        if not isinstance(value, list):
            raise self.error(key, value, 'a list')
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(f'{key}[{i}]', item, 'an object')
        return value


def _video_ids(path: str, entries: List[dict]) -> List[str]:
    """Check ``video_id`` of every entry and that none repeats."""
    seen: Dict[str, int] = {}
    ids = []
    for i, entry in enumerate(entries):
        check = _Checker(path, i, entry)
        vid = check.string(entry, 'video_id', 'video_id')
        if vid in seen:
            raise check.error(
                'video_id', vid, f'a video_id not used before; entry '
                f'{seen[vid]} already has it (one entry per video and file)')
        seen[vid] = i
        ids.append(vid)
    return ids


def file_identity(path: str) -> Optional[Tuple[str, int, int]]:
    """``(real path, size, mtime_ns)``, which changes when a file is edited
    or replaced (for a directory: when an entry is added, removed or
    renamed); None if nothing is at ``path``."""
    real = os.path.realpath(path)
    try:
        stat = os.stat(real)
    except FileNotFoundError:
        return None
    return (real, stat.st_size, stat.st_mtime_ns)


class _ResultCache:
    """Results computed from files (parsed annotation files, a split's
    vocabularies), keyed by a name and the files' :func:`file_identity`,
    so that an edited or replaced file is read again.

    An entry is kept as the pickle of the result, not the result: every
    caller after the first gets its own copy (unpickling a parsed file costs
    about a tenth of parsing and validating its JSON), so no caller can
    change what another sees, and the cache holds one compact bytes object
    per entry (about 0.75x the JSON's size) that the garbage collector never
    walks and forked DataLoader workers share without copying. The first
    caller gets the computed object itself. Entries beyond ``max_bytes``
    (environment variable ``HVLM_ANNOTATION_CACHE_MB``, default 1024; 0
    turns the cache off) are dropped, least recently used first.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._blobs: 'OrderedDict[Tuple, bytes]' = OrderedDict()

    def get(self, what: Hashable, paths: Sequence[str],
            compute: Callable[[], Any]) -> Any:
        reals = tuple(os.path.realpath(p) for p in paths)
        key = (what, reals, tuple(file_identity(p) for p in reals))
        blob = self._blobs.get(key)
        if blob is not None:
            self._blobs.move_to_end(key)
            return pickle.loads(blob)
        result = compute()
        if self.max_bytes > 0:
            # an older version of the same files will not be asked for again
            for old in [k for k in self._blobs if k[:2] == key[:2]]:
                del self._blobs[old]
            blob = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
            if len(blob) <= self.max_bytes:
                self._blobs[key] = blob
                while sum(map(len, self._blobs.values())) > self.max_bytes:
                    self._blobs.popitem(last=False)
        return result

    def clear(self) -> None:
        self._blobs.clear()


_CACHE = _ResultCache(
    int(float(os.environ.get('HVLM_ANNOTATION_CACHE_MB', 1024)) * 2**20))


def cached(what: Hashable, paths: Sequence[str],
           compute: Callable[[], Any]) -> Any:
    """``compute()``, or a copy of its result from an earlier call with the
    same ``what`` while none of ``paths`` has changed (see
    :class:`_ResultCache`). The result is the caller's to change."""
    return _CACHE.get(what, paths, compute)


def clear_annotation_cache() -> None:
    """Forget every cached result (to free its memory, or to time
    parsing)."""
    _CACHE.clear()


def parse_metadata(path: str, cache: bool = True) -> Dict[str, dict]:
    """Parse ``metadata.json``: ``video_id -> dict(domain, duration, ...)``.

    ``domain`` and ``duration`` are required; ``fps``, ``width`` and
    ``height`` are optional (None when absent).

    Args:
        path (str): The JSON file.
        cache (bool): Reuse the result of an earlier call on the same,
            unchanged file (see :class:`_ResultCache`). The result is the
            caller's to change either way.
    """
    if cache:
        return cached('metadata', [path], lambda: _parse_metadata(path))
    return _parse_metadata(path)


def _parse_metadata(path: str) -> Dict[str, dict]:
    entries = load_json_list(path)
    out = {}
    for i, (vid, entry) in enumerate(zip(_video_ids(path, entries), entries)):
        check = _Checker(path, i, entry)
        info = dict(
            domain=check.string(entry, 'domain', 'domain'),
            duration=check.number(entry, 'duration', 'duration'))
        for key in ('fps', 'width', 'height'):
            info[key] = check.number(
                entry, key, key, minimum=1) if key in entry else None
        out[vid] = info
    return out


def _span(check: _Checker, start: float, end: float, field: str,
          start_field: str) -> None:
    if end < start:
        raise check.error(field, end, f'a number >= {start_field} ({start:g})')


def parse_task_file(path: str,
                    task: str,
                    known_ids: Optional[Collection[str]],
                    cache: bool = True) -> Dict[str, List[dict]]:
    """Parse one task file into ``video_id -> [item, ...]``.

    Args:
        path (str): The JSON file.
        task (str): One of :data:`TASK_FILES`.
        known_ids (Collection[str], optional): Videos of the split; any
            other ``video_id`` is an error. None accepts every id.
        cache (bool): Reuse the result of an earlier call on the same,
            unchanged file (see :class:`_ResultCache`). The result is the
            caller's to change either way.
    """
    if cache:
        out = cached(task, [path], lambda: _parse_task_file(path, task))
    else:
        out = _parse_task_file(path, task)
    if known_ids is not None:
        # one key per entry, in file order: the key's index is the entry's
        for i, vid in enumerate(out):
            if vid not in known_ids:
                raise _Checker(path, i, dict(video_id=vid)).error(
                    'video_id', vid, 'the id of a video of this split '
                    '(listed in metadata.json, or a file in the video '
                    'directory)')
    return out


def _parse_task_file(path: str, task: str) -> Dict[str, List[dict]]:
    entries = load_json_list(path)
    key = TASK_FILES[task][1]
    out = {}
    wordless = []  # 'entry i (video_id=...): captions[j] '...''
    for i, (vid, entry) in enumerate(zip(_video_ids(path, entries), entries)):
        check = _Checker(path, i, entry)
        parsed = []
        for j, item in enumerate(check.items(key)):
            f = f'{key}[{j}].'
            if task == 'action_detection':
                start = check.number(item, 'start', f + 'start')
                end = check.number(item, 'end', f + 'end')
                _span(check, start, end, f + 'end', f + 'start')
                label = check.string(item, 'label', f + 'label')
                conf = check.number(
                    item, 'confidence', f + 'confidence', default=1.0)
                parsed.append(
                    dict(start=start, end=end, label=label, confidence=conf))
            elif task == 'video_qa':
                question = check.string(item, 'question', f + 'question')
                answer = check.string(item, 'answer', f + 'answer')
                answer_id = item.get('answer_id')
                if answer_id is not None and (isinstance(answer_id, bool) or
                                              not isinstance(answer_id, int)):
                    raise check.error(f + 'answer_id', answer_id,
                                      'an integer (or no answer_id)')
                parsed.append(
                    dict(
                        question=question, answer=answer, answer_id=answer_id))
            else:
                text = check.string(item, 'text', f + 'text')
                span = check.get(item, 'time', f + 'time', '[start, end]')
                if not isinstance(span, list) or len(span) != 2:
                    raise check.error(f + 'time', span,
                                      'a list [start, end] of two numbers')
                times = dict(start=span[0], end=span[1])
                start = check.number(times, 'start', f + 'time[0]')
                end = check.number(times, 'end', f + 'time[1]')
                _span(check, start, end, f + 'time[1]', f + 'time[0]')
                parsed.append(dict(text=text, start=start, end=end))
                if not caption_words(text):
                    wordless.append(f'entry {i} (video_id={vid!r}): '
                                    f'{key}[{j}] {_short(text)}')
        out[vid] = parsed
    if wordless:
        _warn_wordless(path, wordless)
    return out


# (path, mtime, size) of the files already warned about: a split is read
# by its own dataset and as the vocabulary of the others.
_WARNED_WORDLESS = set()


def _warn_wordless(path: str, wordless: List[str], shown: int = 5) -> None:
    """Name the captions that have no word once tokenised as the caption
    metrics tokenise them (:func:`caption_words`): punctuation only, or
    empty. They are kept (trained as empty captions) but cannot be scored,
    so :class:`~hvlm.evaluation.metrics.CaptionMetric` leaves them out.
    Once per version of a file and process."""
    stat = os.stat(path)
    key = (osp.realpath(path), stat.st_mtime_ns, stat.st_size)
    if key in _WARNED_WORDLESS:
        return
    _WARNED_WORDLESS.add(key)
    more = len(wordless) - shown
    listed = '; '.join(wordless[:shown])
    if more > 0:
        listed += f'; and {more} more'
    print_log(
        f'{path}: {len(wordless)} caption(s) have no words (punctuation '
        f'only); they train as empty captions and are not scored: {listed}',
        logger='current', level=logging.WARNING)


def segment_at_times(times: Sequence[float], starts: Sequence[float],
                     ends: Sequence[float]) -> np.ndarray:
    """Index of the segment covering each time, ``[N]`` (-1 where none).

    Segments are closed intervals ``[start, end]``; where two cover a time
    (a shared boundary, or overlapping annotations) the one that starts later
    wins, so segments that tile a video give every frame exactly the segment
    whose ``start <= t < end`` (the last one also owns its ``end``).
    """
    times = np.asarray(times, dtype=np.float64)  # [N]
    owner = np.full(times.shape, -1, dtype=np.int64)
    for k in sorted(range(len(starts)), key=lambda k: (starts[k], k)):
        owner[(times >= starts[k]) & (times <= ends[k])] = k
    return owner
