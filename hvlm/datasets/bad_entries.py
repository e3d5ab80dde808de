"""Counting and naming the entries a data set drops (``on_bad='skip'``) or
refuses (``on_bad='error'``), shared by the scene-graph readers."""
from collections import Counter
from typing import Dict, List

from mmengine.logging import print_log

from .exceptions import AnnotationError


class BadEntries:
    """Mixin: ``_bad(kind, where, what)`` raises ``AnnotationError`` naming
    ``where`` (a file and key) under ``on_bad='error'``, else counts
    ``kind`` and keeps three examples; ``_log_drops`` reports the counts
    once per load. Call ``_reset_drops`` before reading."""

    on_bad: str = 'error'

    def _reset_drops(self) -> None:
        self.drop_counts: Counter = Counter()
        self._bad_examples: Dict[str, List[str]] = {}

    def _bad(self, kind: str, where: str, what: str) -> None:
        if self.on_bad == 'error':
            raise AnnotationError(f'{where}: {what}')
        self.drop_counts[kind] += 1
        named = self._bad_examples.setdefault(kind, [])
        if len(named) < 3:
            named.append(f'{where}: {what}')

    def _log_drops(self, kept: str, source: str) -> None:
        """Log ``'<Class>(<split>, <mode>): <kept> kept from <source>;
        dropped: ...'`` and a warning with examples per skipped kind."""
        name = type(self).__name__
        parts = [f'{k}={v}' for k, v in sorted(self.drop_counts.items())]
        print_log(
            f'{name}({self.split}, {self.mode}): {kept} kept from {source}; '
            'dropped: ' + (', '.join(parts) if parts else 'nothing'),
            logger='current')
        for kind, examples in getattr(self, '_bad_examples', {}).items():
            print_log(f'{name}: skipped {kind}, e.g. ' + '; '.join(examples),
                      logger='current', level=30)
