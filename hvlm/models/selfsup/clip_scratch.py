"""A CLIP built from a config instead of a checkpoint, with a tokenizer that
needs no training data, and the export of a CLIP to a Hugging Face
directory.

Users without pretrained weights (and this project's demos and tests, since
no hub is reachable) pretrain a CLIP from scratch with
:class:`VideoTextContrastive`; what it writes is the directory layout a
downloaded CLIP has, so every consumer reads it through ``HFVisionEncoder``
/ ``HFTextEncoder`` like any other checkpoint.
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Sequence

import torch.nn as nn

from ..backbones.hf_pretrained import import_transformers, quiet_transformers

# Ids of the byte tokenizer's special tokens. CLIP pools at config.json's
# eos_token_id; transformers treats eos_token_id=2 as the pre-2023
# convention (pool at the largest id), so the end token must not be id 2.
BYTE_SPECIALS = ('<pad>', '<unk>', '<bos>', '<eos>')
PAD_ID, BOS_ID, EOS_ID = 0, 2, 3


def byte_tokenizer(max_length: int):
    """A byte-level tokenizer with no merges: 4 special tokens and the 256
    bytes (as GPT-2's printable byte alphabet), NFKC and lower-cased, every
    text wrapped as ``<bos> ... <eos>``.

    It needs no corpus, so it is the same on every machine and rank, and
    it covers every language: a character outside ASCII is its UTF-8 bytes.
    """
    from tokenizers import (Tokenizer, decoders, models, normalizers,
                            pre_tokenizers, processors)
    transformers = import_transformers()
    vocab = {tok: i for i, tok in enumerate(BYTE_SPECIALS)}
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[char] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token='<unk>'))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(
        single='<bos> $A <eos>',
        special_tokens=[('<bos>', BOS_ID), ('<eos>', EOS_ID)])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token='<pad>',
        unk_token='<unk>',
        bos_token='<bos>',
        eos_token='<eos>',
        model_max_length=max_length)


def scratch_clip(vision: dict, text: dict, projection_dim: int,
                 vocab_size: int, eos_token_id: int, pad_token_id: int,
                 bos_token_id: int) -> nn.Module:
    """A randomly initialised ``transformers.CLIPModel``.

    Args:
        vision (dict): ``CLIPVisionConfig`` arguments (``hidden_size``,
            ``num_hidden_layers``, ``image_size``, ``patch_size``, ...).
        text (dict): ``CLIPTextConfig`` arguments; the vocabulary and
            special ids are the tokenizer's.
    """
    transformers = import_transformers()
    text = dict(
        text,
        vocab_size=vocab_size,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        projection_dim=projection_dim)
    vision = dict(vision, projection_dim=projection_dim)
    config = transformers.CLIPConfig(
        text_config=text, vision_config=vision, projection_dim=projection_dim)
    return transformers.CLIPModel(config)


def preprocessor_config(image_size: int, mean: Sequence[float],
                        std: Sequence[float]) -> dict:
    """``preprocessor_config.json`` of a CLIP that sees ``image_size``
    squares normalised by ``mean`` / ``std`` (0-255 scale, as hvlm's data
    preprocessor holds them; the file holds them on the 0-1 scale)."""
    return dict(
        image_processor_type='CLIPImageProcessor',
        do_resize=True,
        size=dict(shortest_edge=int(image_size)),
        resample=3,
        do_center_crop=True,
        crop_size=dict(height=int(image_size), width=int(image_size)),
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[float(m) / 255 for m in mean],
        image_std=[float(s) / 255 for s in std],
        do_convert_rgb=True)


def save_clip_directory(out_dir: str, clip: nn.Module, tokenizer,
                        preprocessor: dict, overwrite: bool = False) -> str:
    """Write ``clip``, its tokenizer and ``preprocessor`` to ``out_dir`` as
    ``save_pretrained`` does for a downloaded CLIP.

    The directory is written beside ``out_dir`` first and renamed into
    place, so a crash leaves either the old directory or the new one. An
    existing ``out_dir`` is replaced only with ``overwrite=True`` and only
    when it holds nothing but a previous export (config.json, weights,
    tokenizer and preprocessor files): anything else in it is refused, never
    deleted.
    """
    out_dir = osp.abspath(out_dir)
    if osp.exists(out_dir):
        if not osp.isdir(out_dir):
            raise FileExistsError(f'{out_dir} exists and is not a directory')
        found = os.listdir(out_dir)
        ours = ('config.json', 'model.safetensors', 'preprocessor_config.json',
                'tokenizer.json', 'tokenizer_config.json',
                'special_tokens_map.json', 'generation_config.json')
        if found and not overwrite:
            raise FileExistsError(
                f'{out_dir} is not empty; export into a new directory')
        foreign = sorted(set(found) - set(ours))
        if foreign:
            raise FileExistsError(
                f'{out_dir} holds files that are not a CLIP export '
                f'({", ".join(foreign[:5])}); refusing to replace it')
    parent = osp.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(out_dir)}.', dir=parent)
    try:
        with quiet_transformers():
            clip.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
        with open(osp.join(tmp, 'preprocessor_config.json'), 'w') as f:
            json.dump(preprocessor, f, indent=2)
        if osp.exists(out_dir):
            old = tempfile.mkdtemp(
                prefix=f'.{osp.basename(out_dir)}.old.', dir=parent)
            os.rmdir(old)
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
