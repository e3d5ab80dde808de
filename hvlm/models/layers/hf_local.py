"""Reading a Hugging Face checkpoint directory without a hub: the checks
and helpers shared by every wrapper that loads pretrained weights (the
encoders in ``backbones/``, the causal LM in ``language/``).

``transformers`` is imported on first use, so ``import hvlm`` stays fast.
"""
import json
import os.path as osp
from contextlib import contextmanager
from typing import Iterator, Optional, Tuple

import torch
import torch.nn as nn

WEIGHT_FILES = ('model.safetensors', 'model.safetensors.index.json',
                'pytorch_model.bin', 'pytorch_model.bin.index.json')
TOKENIZER_FILES = ('tokenizer.json', 'vocab.json', 'spiece.model',
                   'tokenizer.model', 'vocab.txt')


def import_transformers():
    """``transformers``, or an error that says how to get it."""
    try:
        import transformers
    except ImportError as e:
        raise ImportError(
            'pretrained encoders need `transformers` and `safetensors`: '
            'pip install -r requirements/runtime.txt') from e
    return transformers


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars: hvlm checks
    what they report (missing, unexpected and resized weights) itself and
    fails on what matters."""
    logging = import_transformers().utils.logging
    verbosity = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def read_json(path: str, name: str) -> dict:
    """``path/name`` parsed, or an error naming the missing file."""
    file = osp.join(path, name)
    if not osp.isfile(file):
        raise FileNotFoundError(f'{file} is missing: a pretrained directory '
                                f'needs {name} (save_pretrained writes it)')
    with open(file) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{file} is not valid JSON: {e}') from e


def check_directory(path: str) -> dict:
    """Check that ``path`` holds a config and weights; return the config.

    Raises:
        FileNotFoundError: naming the directory or the missing file.
    """
    if not isinstance(path, str) or not path:
        raise ValueError(f'pretrained={path!r} must name a local directory '
                         '(e.g. /data/clip-vit-base-patch16)')
    if not osp.isdir(path):
        raise FileNotFoundError(
            f'pretrained directory {path} does not exist; hvlm never '
            'downloads: save the model there with save_pretrained (or '
            'huggingface-cli download on a machine with network)')
    config = read_json(path, 'config.json')
    if not any(osp.isfile(osp.join(path, f)) for f in WEIGHT_FILES):
        raise FileNotFoundError(
            f'{path} has no weights file: expected one of '
            f'{", ".join(WEIGHT_FILES)}')
    return config


def set_train_mode_by_grad(root: nn.Module, mode: bool) -> None:
    """Train mode only where something trains.

    A module holding parameters trains iff one of them requires a
    gradient; a parameter-free module (dropout) follows its parent. So a
    frozen encoder stays in eval mode (no dropout, fixed statistics)
    whatever the Runner asks, and an unfrozen last block still gets its
    dropout.
    """

    def visit(module: nn.Module, inherited: bool) -> None:
        params = list(module.parameters())
        module.training = (mode and any(p.requires_grad for p in params)
                           ) if params else inherited
        for child in module.children():
            visit(child, module.training)

    visit(root, mode)


def fingerprint(param: torch.Tensor,
                chunk: int = 1 << 22) -> Tuple[float, float, float]:
    """Sum, sum of squares and sum of magnitudes of a weight (float64),
    over ``chunk`` elements at a time: a float64 copy of a whole LM's
    embedding (150k x 1.5k) would take 1.8 GB."""
    total = squares = magnitudes = 0.
    with torch.no_grad():
        for part in param.detach().reshape(-1).split(chunk):
            x = part.double()
            total += x.sum().item()
            squares += x.square().sum().item()
            magnitudes += x.abs().sum().item()
    return total, squares, magnitudes


def same_fingerprint(a: Tuple[float, float, float],
                     b: Tuple[float, float, float]) -> bool:
    """Equal up to summation order (a tower moved to another device sums
    in another order); any re-initialisation is far outside this."""
    scale = max(b[2], 1e-12)
    return abs(a[0] - b[0]) <= 1e-6 * scale and abs(
        a[1] - b[1]) <= 1e-6 * max(b[1], 1e-12) and abs(a[2] -
                                                        b[2]) <= 1e-6 * scale


def load_tokenizer(path: str, vocab_size: Optional[int], key: str = ''):
    """The directory's own tokenizer (``AutoTokenizer``), checked to emit
    only ids the model has embeddings for (``vocab_size`` of config.json,
    at ``key``; ``None`` skips the check)."""
    if not any(osp.isfile(osp.join(path, f)) for f in TOKENIZER_FILES):
        raise FileNotFoundError(
            f'{path} has no tokenizer: expected one of '
            f'{", ".join(TOKENIZER_FILES)} (save the tokenizer with '
            'save_pretrained into the same directory)')
    transformers = import_transformers()
    with quiet_transformers():
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                path, local_files_only=True)
        except (OSError, ValueError, ImportError) as e:
            # ImportError: SigLIP's spiece.model needs `sentencepiece`
            raise ValueError(
                f'cannot load the tokenizer from {path}: {e}') from e
    if vocab_size is not None and len(tokenizer) > vocab_size:
        raise ValueError(
            f'{path}: the tokenizer has {len(tokenizer)} tokens but '
            f'config.json {key}vocab_size is {vocab_size}: ids past it have '
            'no embedding')
    return tokenizer
