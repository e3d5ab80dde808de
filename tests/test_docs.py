"""Every config that README.md and docs/*.md name exists and loads.

A path is what the docs write after ``configs/`` (``../configs/`` in links
from docs/); ``{a,b}`` stands for each of a and b and ``<name>`` for any
name, which must match at least one file. A config a doc defines itself, in
a Python block whose first line is ``# configs/<name>.py``, is written out
and loaded from beside the repo's configs.
"""
import glob
import itertools
import re
from pathlib import Path

import pytest
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / 'README.md'] + sorted((REPO / 'docs').glob('*.md'))
PATH = re.compile(r'(?<![\w/.])(?:\.\./)?((?:tests/data/)?configs/'
                  r'[\w./{},<>-]+?\.py)\b')
DEFINED = re.compile(r'```python\n# (configs/[\w.-]+\.py)\n(.*?)```', re.S)


def _expand(path: str):
    """``configs/hier_{a,b}.py`` -> both paths."""
    parts = re.split(r'\{([^}]*)\}', path)
    fixed, choices = parts[0::2], [p.split(',') for p in parts[1::2]]
    for pick in itertools.product(*choices):
        yield ''.join(f + c for f, c in zip(fixed, pick)) + fixed[-1]


def _defined_in_docs():
    defined = {}
    for doc in DOCS:
        for path, body in DEFINED.findall(doc.read_text()):
            defined[path] = (doc.name, body)
    return defined


def _mentioned():
    mentioned = set()
    for doc in DOCS:
        for match in PATH.finditer(doc.read_text()):
            for path in _expand(match.group(1)):
                mentioned.add((doc.name, path))
    return sorted(mentioned)


MENTIONED = _mentioned()


def test_the_docs_mention_configs():
    # the pattern finds what it should: a failure here is the test's fault
    paths = {p for _, p in MENTIONED}
    assert {'configs/hier_sports.py', 'configs/hier_news_lora-ft.py',
            'configs/_base_/models/hvlm_base.py',
            'configs/hier_general_8e.py'} <= paths


@pytest.mark.parametrize('doc, path', MENTIONED,
                         ids=[f'{d}:{p}' for d, p in MENTIONED])
def test_config_exists_and_loads(doc, path, tmp_path):
    defined = _defined_in_docs()
    if path in defined:
        where, body = defined[path]
        # the doc's own config, as a user would save it beside configs/
        body = body.replace("'./", f"'{REPO / 'configs'}/")
        files = [tmp_path / Path(path).name]
        files[0].write_text(body)
    else:
        files = [Path(f) for f in glob.glob(
            str(REPO / re.sub(r'<[^>]*>', '*', path)))]
        assert files, f'{doc} names {path}, which is not in the repo'
    for file in files:
        cfg = Config.fromfile(str(file), import_custom_modules=False)
        # an experiment config (not a _base_ part) describes a whole run
        if '_base_' not in file.parts:
            assert 'model' in cfg and 'train_dataloader' in cfg, \
                f'{file} (named in {doc}) is not a whole experiment'


def test_the_8_epoch_general_config_ends_its_schedule_at_epoch_8():
    cfg = Config.fromfile(str(REPO / 'configs' / 'hier_general_8e.py'))
    assert cfg.train_cfg.max_epochs == 8
    assert max(s['end'] for s in cfg.param_scheduler) == 8
    general = Config.fromfile(str(REPO / 'configs' / 'hier_general.py'))
    assert cfg.train_dataloader.dataset.get('domains') is None
    assert cfg.model == general.model


def _lora_table():
    """DOMAIN_MODULES.md's LoRA table: ``[(model, total, per domain)]``."""
    text = (REPO / 'docs' / 'DOMAIN_MODULES.md').read_text()
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip('|').split('|')]
        if len(cells) == 4 and re.fullmatch(r'[\d,]+', cells[1]):
            rows.append((cells[0], int(cells[1].replace(',', '')),
                         int(cells[2].replace(',', ''))))
    return rows


def test_the_lora_parameter_table_is_what_count_params_prints():
    from hvlm.analysis import build_model_on_meta, count_parameters
    from hvlm.utils import register_all_modules
    register_all_modules()
    lora = Config.fromfile(
        str(REPO / 'configs' / 'hier_sports_lora-ft.py')).model.adapter
    base = Config.fromfile(
        str(REPO / 'configs' / '_base_' / 'models' / 'hvlm_base.py')).model
    small = Config.fromfile(
        str(REPO / 'configs' / 'hier_sports_lora-ft.py')).model
    models = [small.to_dict()]
    for targets in (('attn', 'mlp'), ('attn', )):
        cfg = base.to_dict()
        cfg['adapter'] = dict(lora.to_dict(), target_modules=targets)
        models.append(cfg)
    rows = _lora_table()
    assert len(rows) == 3, rows
    for (name, total, per_domain), cfg in zip(rows, models):
        counts = count_parameters(build_model_on_meta(cfg))
        assert (total, per_domain) == (
            counts['total'], counts['lora_per_domain']['sports']), name
