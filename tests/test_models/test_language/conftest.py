"""Tiny saved LLaMA, Qwen2 and GPT-2 directories shared by the LM tests."""
import pytest

from tests.hf_causal_lms import FAMILIES, save_tiny_lm


@pytest.fixture(scope='session')
def lm_dirs(tmp_path_factory):
    """``{family: (directory, the transformers model saved there)}``."""
    out = {}
    for family in FAMILIES:
        path = str(tmp_path_factory.mktemp(f'tiny_{family}'))
        out[family] = (path, save_tiny_lm(path, family))
    return out
