"""Tiny saved CLIP and SigLIP directories, shared by the encoder tests."""
import pytest

from tests.hf_checkpoints import save_tiny_model


@pytest.fixture(scope='session')
def hf_dirs(tmp_path_factory):
    """``{family: (directory, the transformers model saved there)}``."""
    out = {}
    for family in ('clip', 'siglip'):
        path = str(tmp_path_factory.mktemp(f'tiny_{family}'))
        out[family] = (path, save_tiny_model(path, family))
    return out
