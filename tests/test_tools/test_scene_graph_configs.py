"""Every Action Genome config ``<model>_<mode>_ag.py`` (issue 15's naming)
reads, and its model, its three splits and its file name agree on the
mode; SGDET configs read a detections file."""
import pytest
from mmengine.config import Config

from .conftest import REPO

CONFIGS = sorted((REPO / 'configs' / 'scene_graph').glob('*_ag.py'))
MODELS = {'sttran': 'STTran', 'tempura': 'TEMPURA', 'stket': 'STKET',
          'scenellm': 'SceneLLM'}


def test_every_model_has_every_mode():
    names = {p.name for p in CONFIGS}
    for model in MODELS:
        for mode in ('predcls', 'sgcls', 'sgdet'):
            assert f'{model}_{mode}_ag.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_model_splits_and_name_agree(path):
    model, mode, _ = path.stem.split('_')
    cfg = Config.fromfile(str(path))
    assert cfg.model.type == MODELS[model]
    assert cfg.model.mode == mode
    for split in ('train', 'val', 'test'):
        dataset = cfg[f'{split}_dataloader'].dataset
        assert dataset.mode == mode, split
        assert bool(dataset.get('detections_file')) == (mode == 'sgdet')
