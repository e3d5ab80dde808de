"""Class names as the datasets spell them -> the text a prompt carries."""
import os.path as osp
import re
from typing import List, Sequence

# 'ApplyEyeMakeup' -> 'Apply Eye Makeup'; 'YoYo' -> 'Yo Yo';
# 'PlayingDaf' -> 'Playing Daf'; an acronym stays whole: 'TVShow' ->
# 'TV Show'.
_LOWER_UPPER = re.compile(r'(?<=[a-z0-9])(?=[A-Z])')
_ACRONYM_END = re.compile(r'(?<=[A-Z])(?=[A-Z][a-z])')


def class_name_to_text(name: str) -> str:
    """The one documented rule: ``_`` becomes a space, CamelCase words are
    split, runs of spaces collapse; case is kept (CLIP's tokenizer
    lower-cases anyway).

    >>> class_name_to_text('ApplyEyeMakeup')
    'Apply Eye Makeup'
    >>> class_name_to_text('brush_hair')
    'brush hair'
    >>> class_name_to_text('air drumming')
    'air drumming'
    """
    text = name.replace('_', ' ')
    text = _LOWER_UPPER.sub(' ', text)
    text = _ACRONYM_END.sub(' ', text)
    return ' '.join(text.split())


def read_class_texts(path: str, classes: Sequence[str]) -> List[str]:
    """A class-name file: one prompt text per line, in label order, one
    line per class (blank lines are errors, not skipped, so that a line's
    number is its label + 1)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'class_names_file {path} does not exist')
    with open(path, encoding='utf-8') as f:
        lines = [line.rstrip('\r\n') for line in f]
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != len(classes):
        raise ValueError(
            f'{path}: {len(lines)} lines but the dataset has '
            f'{len(classes)} classes; write one text per class, in label '
            f'order (first: {classes[0]!r})')
    for i, line in enumerate(lines):
        if not line.strip():
            raise ValueError(f'{path}:{i + 1}: empty text for class '
                             f'{classes[i]!r}')
    return [line.strip() for line in lines]
