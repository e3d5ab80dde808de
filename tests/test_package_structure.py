"""The package's layering, read from its import statements.

Every ``import`` and ``from ... import`` in hvlm (function-level ones
included) is an edge from the importing module to the module it names. An
edge to a package means its ``__init__``; the implicit import of a parent
package's ``__init__`` is not counted, as linters do not count it.
"""
import ast
import os.path as osp
from pathlib import Path
from typing import Dict, Set

import hvlm

ROOT = Path(osp.dirname(hvlm.__file__))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ''
    base = module.split('.')
    if not is_package:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return '.'.join(base + ([node.module] if node.module else []))


def import_graph() -> Dict[str, Set[str]]:
    """``{module: hvlm modules it imports}`` for every module of hvlm."""
    files = {_module_name(p): p for p in ROOT.rglob('*.py')}
    graph: Dict[str, Set[str]] = {}
    for module, path in files.items():
        edges = set()
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, path.name == '__init__.py', node)
                # `from pkg import submodule` names the submodule
                targets = [
                    f'{base}.{a.name}' if f'{base}.{a.name}' in files else base
                    for a in node.names
                ]
            else:
                continue
            edges.update(t for t in targets if t in files and t != module)
        graph[module] = edges
    return graph


def reachable(graph: Dict[str, Set[str]], start: str) -> Set[str]:
    seen, stack = set(), [start]
    while stack:
        for nxt in graph[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def test_graph_sees_known_edges():
    # the reader itself must work, or every check below passes vacuously
    graph = import_graph()
    assert 'hvlm.structures' in graph['hvlm.models.heads.base_head']
    assert 'hvlm.structures.merge_info' in graph[
        'hvlm.structures.video_features']
    assert 'hvlm.engine' in graph['hvlm.utils.setup_env']  # function-level


def assert_never_reaches(graph, importers, forbidden, exact=()):
    """No module under ``importers`` reaches a package in ``forbidden`` (or
    a module in it), nor a module named in ``exact``."""
    for module in graph:
        if module.startswith(importers):
            bad = sorted(m for m in reachable(graph, module)
                         if m.startswith(tuple(f + '.' for f in forbidden))
                         or m in forbidden or m in exact)
            assert not bad, f'{module} reaches {bad}'


def test_attention_family_does_not_reach_other_families():
    assert_never_reaches(
        import_graph(), 'hvlm.models.attention',
        ('hvlm.models.heads', 'hvlm.models.mergers', 'hvlm.models.vlms',
         'hvlm.analysis'),
        exact=('hvlm.models', ))


def test_heads_do_not_import_backbones():
    assert_never_reaches(import_graph(), 'hvlm.models.heads',
                         ('hvlm.models.backbones', ))


def test_structures_sit_below_models():
    assert_never_reaches(import_graph(), 'hvlm.structures',
                         ('hvlm.models', ))


def test_no_import_cycles():
    graph = import_graph()
    cycles = sorted(m for m in graph if m in reachable(graph, m))
    assert not cycles, f'modules on an import cycle: {cycles}'
