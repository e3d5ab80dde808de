"""Caption words as the COCO caption evaluation sees them.

``pycocoevalcap`` scores captions after its ``PTBTokenizer``: Stanford
CoreNLP 3.4.1's Penn Treebank tokenizer run through Java with
``-lowerCase -preserveLines``, whose tokens in a fixed punctuation list
are then dropped. :func:`caption_words` gives the same words without Java,
from nltk's ``NLTKWordTokenizer`` (the Treebank rules as nltk maintains
them; pure regular expressions, no data download) and a few steps where
CoreNLP and nltk differ:

- curly quotes, dashes and the ellipsis character are read as their ASCII
  forms (CoreNLP normalises them), and ``¿``, ``¡`` and ``°`` are split
  off words;
- a run of ``?`` and ``!`` is one token (``?!`` is kept, as in CoreNLP,
  because only a lone ``?`` or ``!`` is in the dropped list), and ``&``
  between letters stays in its word (``at&t``);
- a period ending a word inside the caption is split off unless the word
  is an abbreviation (single letters and dotted acronyms such as ``u.s.``,
  ``e.g.``, ``p.m.``, and the titles, months and the like CoreNLP keeps),
  since nltk expects one sentence at a time and CoreNLP does not;
- brackets become ``-lrb-``, ``-rrb-``, ``-lsb-``, ``-rsb-``, ``-lcb-``,
  ``-rcb-`` and are *kept*: pycocoevalcap's list names the upper-case forms
  but CoreNLP has already lower-cased them, so COCO scores keep them too.

Non-ASCII letters are letters (``'café'``, ``'él'``, ``'straße'`` stay one
word each). Chinese and Japanese are written without spaces; CoreNLP keeps
a whole run of such characters as one token, which would make a Chinese
caption one "word" (no n-gram could match unless the caption were copied
verbatim, and the decoder's vocabulary would be whole sentences). Here
every Han, Hiragana and Katakana character is a word of its own, the usual
character-level scoring of Chinese captions, and CJK punctuation
(``。``, ``，``, ``！`` ...) is dropped like its ASCII counterparts. Korean
separates words with spaces and is left as it is.

Known differences from the Java tokenizer, none of them common in
captions: CoreNLP's other normalisations (``€`` -> ``$``, ``½`` ->
``1/2``), its splits of ``'n'``, ``y'all``, ``'tis``, ``10:00am`` and of
a period with no space after it (``3.The``), the leading quote it keeps on
``'80s``, ``<tags>`` and ``@names`` it keeps whole, and characters outside
the Basic Multilingual Plane (emoji) that it drops and nltk keeps. Some
are pinned in ``tests/test_utils/test_ptb_tokenize.py``.
"""
import re
import unicodedata
from typing import List

from nltk.tokenize import NLTKWordTokenizer

__all__ = ['caption_words', 'COCO_PUNCTUATION']

# Tokens pycocoevalcap drops after tokenising (compared case-sensitively).
COCO_PUNCTUATION = frozenset([
    "''", "'", '``', '`', '-LRB-', '-RRB-', '-LCB-', '-RCB-', '.', '?', '!',
    ',', ':', '-', '--', '...', ';'
])

# Read as CoreNLP reads them.
_CHAR_MAP = str.maketrans({
    '\u201c': '"', '\u201d': '"', '\u201e': '"', '\u2018': "'",
    '\u2019': "'", '\u201a': "'", '\u2013': ' -- ', '\u2014': ' -- ',
    '\u2026': ' ... ', '\u00bf': ' \u00bf ', '\u00a1': ' \u00a1 ',
    '\u00b0': ' \u00b0 ',
    '\n': ' ', '\r': ' '
})

# Han (with extension A and compatibility ideographs), Hiragana, Katakana.
_CJK = re.compile('([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff'
                  '\u3040-\u309f\u30a0-\u30ff])')
# CJK symbols and punctuation, and the full-width punctuation forms.
_CJK_PUNCT_BLOCKS = re.compile('[\u3000-\u303f\uff00-\uff65]')

# Words CoreNLP keeps with their period (checked against it).
_ABBREVIATIONS = frozenset(
    'mr mrs ms dr st jr sr prof vs etc inc co corp ltd jan feb mar apr aug '
    'sept oct nov dec mon tue fri gen col sgt rev gov sen rep ave blvd mt ft '
    'dept est al jun jul wed thu lt capt messrs'.split())
# Single letters and dotted acronyms: a, u.s, e.g, p.m, ph.d (period cut).
_ACRONYM = re.compile(r'[^\W\d_]|[^\W\d_]+(?:\.[^\W\d_]+)+')
# A word ending in a period, the period not part of an ellipsis.
_WORD_PERIOD = re.compile(r'(.*\w)\.')
# "n't" left on its word when another contraction followed it
# ("shouldn't've": nltk splits the "'ve" only).
_NOT = re.compile(r"(.+)(n't)", re.IGNORECASE)

_BRACKETS = {'(': '-LRB-', ')': '-RRB-', '[': '-LSB-', ']': '-RSB-',
             '{': '-LCB-', '}': '-RCB-'}


# nltk's punctuation rules, changed where CoreNLP keeps a token whole: a
# run of "?" and "!" ("?!"), and "&" between letters ("at&t").
_RULE_CHANGES = {
    '[?!]': r'[?!]+',
    '[;@#$%&]': r'[;@#$%]|(?<![^\W\d_])&|&(?![^\W\d_])',
}


class _Tokenizer(NLTKWordTokenizer):
    """nltk's Treebank rules with :data:`_RULE_CHANGES`."""

    PUNCTUATION = [
        (re.compile(_RULE_CHANGES[pattern.pattern]), repl)
        if getattr(pattern, 'pattern', None) in _RULE_CHANGES else
        (pattern, repl) for pattern, repl in NLTKWordTokenizer.PUNCTUATION
    ]


_TOKENIZER = _Tokenizer()


def _is_abbreviation(stem: str) -> bool:
    return stem.lower() in _ABBREVIATIONS or bool(_ACRONYM.fullmatch(stem))


def _cjk_punctuation(char: str) -> bool:
    return bool(_CJK_PUNCT_BLOCKS.match(char)) and \
        unicodedata.category(char)[0] in 'PS'


def _split_words(tokens: List[str]) -> List[str]:
    """Split a period off a word that is not an abbreviation, then a
    "n't" off its word; rejoin the final period nltk split off an
    abbreviation."""
    out: List[str] = []
    for i, token in enumerate(tokens):
        match = _WORD_PERIOD.fullmatch(token)
        if match and not _is_abbreviation(match.group(1)):
            word, period = [match.group(1)], ['.']
        elif token == '.' and i == len(tokens) - 1 and out and \
                _is_abbreviation(out[-1]):
            out[-1] += '.'
            continue
        else:
            word, period = [token], []
        negation = _NOT.fullmatch(word[0])
        if negation:
            word = [negation.group(1), negation.group(2)]
        out += word + period
    return out


def caption_words(text: str) -> List[str]:
    """Lower-cased words of a caption as pycocoevalcap scores them (see
    the module docstring): ``"The player's ball didn't go in."`` ->
    ``['the', 'player', "'s", 'ball', 'did', "n't", 'go', 'in']``.

    Idempotent on its own output joined by spaces, so a caption a model
    writes from these words is scored on the same words. The ``words``
    vocabulary and the heads' :class:`~hvlm.models.text.WordTokenizer` use
    this function.

    Args:
        text (str): A caption, question or answer, in any language.

    Returns:
        list[str]: The words; empty for an empty or punctuation-only text.
    """
    text = text.translate(_CHAR_MAP)
    text = ''.join(' ' if _cjk_punctuation(c) else c for c in text)
    text = _CJK.sub(r' \1 ', text)
    tokens = _split_words(_TOKENIZER.tokenize(text))
    tokens = [_BRACKETS.get(t, t).lower() for t in tokens]
    return [t for t in tokens if t not in COCO_PUNCTUATION]
