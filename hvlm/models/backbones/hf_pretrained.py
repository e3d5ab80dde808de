"""Loading one tower of a Hugging Face image-text model from a local
directory, with every check done at build time.

Pretrained weights enter hvlm here and nowhere else. Nothing in this module
contacts a hub: every ``from_pretrained`` is ``local_files_only=True``, and a
directory that cannot be used fails while the model is built (before any
data is read) with the directory and the missing file or key named.
``transformers`` is imported on first use, so ``import hvlm`` stays fast.

A directory is what ``save_pretrained`` writes: ``config.json``, the weights
(``model.safetensors`` or ``pytorch_model.bin``, possibly sharded), and for
the towers that need them ``preprocessor_config.json`` (image statistics and
size) and the tokenizer files.
"""
from contextlib import nullcontext
from fnmatch import fnmatch
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule

# The directory checks and helpers every pretrained wrapper shares
# (re-exported here for code that imported them from this module).
from ..layers.hf_local import (  # noqa: F401
    TOKENIZER_FILES, WEIGHT_FILES, check_directory, fingerprint,
    import_transformers, load_tokenizer, quiet_transformers, read_json,
    same_fingerprint, set_train_mode_by_grad)

# ``model_type`` of config.json -> (family, the one tower it holds, or None
# for a whole image-text model holding both).
MODEL_TYPES = {
    'clip': ('clip', None),
    'clip_vision_model': ('clip', 'vision'),
    'clip_text_model': ('clip', 'text'),
    'siglip': ('siglip', None),
    'siglip_vision_model': ('siglip', 'vision'),
    'siglip_text_model': ('siglip', 'text'),
}
# (family, tower) -> the transformers class that loads it. CLIP's towers
# come with their projection into the shared space; SigLIP's pooling heads
# are part of its tower models.
TOWER_CLASSES = {
    ('clip', 'vision'): 'CLIPVisionModelWithProjection',
    ('clip', 'text'): 'CLIPTextModelWithProjection',
    ('siglip', 'vision'): 'SiglipVisionModel',
    ('siglip', 'text'): 'SiglipTextModel',
}
# Weights in a whole model's checkpoint that a tower leaves unused on
# purpose: the other tower's and the image-text logit scale (and bias).
# transformers reports them as unexpected, like the tower's own surplus
# weights (which it names without the tower's prefix for SigLIP in 5.x).
FOREIGN_WEIGHTS = {
    'vision': ('text_model.', 'text_projection.', 'logit_'),
    'text': ('vision_model.', 'visual_projection.', 'logit_'),
}


def tower_config(config: dict, path: str,
                 tower: str) -> Tuple[str, dict, str]:
    """The family, the tower's own config and its key prefix in config.json
    (``'vision_config.'`` in a whole model's, ``''`` in a tower's)."""
    model_type = config.get('model_type')
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f'{path}/config.json: model_type={model_type!r} is not supported;'
            f' supported: {sorted(MODEL_TYPES)}')
    family, holds = MODEL_TYPES[model_type]
    if holds is None:
        key = f'{tower}_config'
        if not isinstance(config.get(key), dict):
            raise ValueError(f'{path}/config.json has no {key}')
        return family, config[key], key + '.'
    if holds != tower:
        raise ValueError(
            f'{path}/config.json: model_type={model_type!r} holds only the '
            f'{holds} tower, not the {tower} tower')
    return family, config, ''


def load_tower(path: str, family: str, tower: str) -> nn.Module:
    """``from_pretrained(path, local_files_only=True)`` of one tower,
    refusing weights that are missing or do not fit the config, which
    transformers 5 re-initialises at random with a report in the log.
    (``ignore_mismatched_sizes=True`` only makes it list resized weights
    instead of raising without naming them: any listed weight fails here.)
    """
    cls = getattr(import_transformers(), TOWER_CLASSES[(family, tower)])
    with quiet_transformers():
        try:
            model, info = cls.from_pretrained(
                path,
                local_files_only=True,
                output_loading_info=True,
                ignore_mismatched_sizes=True)
        except (OSError, ValueError, RuntimeError) as e:
            raise ValueError(
                f'cannot load the {tower} tower from {path}: {e}') from e
    foreign = FOREIGN_WEIGHTS[tower]
    problems = {
        'missing from the weights file':
        sorted(info.get('missing_keys', ())),
        'of a different shape than config.json says':
        sorted(k if isinstance(k, str) else k[0]
               for k in info.get('mismatched_keys', ())),
        'in the weights file but not in config.json\'s model':
        sorted(k for k in info.get('unexpected_keys', ())
               if not k.startswith(foreign)),
    }
    for what, keys in problems.items():
        if keys:
            shown = ', '.join(keys[:5]) + (' ...' if len(keys) > 5 else '')
            raise ValueError(
                f'{path}: {len(keys)} weights of the {tower} tower are '
                f'{what}: {shown}. The directory is incomplete or its '
                'config.json belongs to another checkpoint')
    return model


def check_width(path: str, key: str, actual: int, name: str,
                expected: Optional[int]) -> None:
    """Fail when the config expects another width than the checkpoint's."""
    if expected is not None and expected != actual:
        raise ValueError(
            f'{path}/config.json: {key} is {actual} but the config expects '
            f'{name}={expected}; use a checkpoint of that width or change '
            f'{name}')


def read_image_statistics(path: str,
                          channels: int) -> Tuple[list, list, Tuple[int,
                                                                    int]]:
    """Mean and std on the 0-255 scale and the ``(height, width)`` frames
    are encoded at, from ``preprocessor_config.json``.

    The image processor rescales (``x * rescale_factor``) and then
    normalises with ``image_mean`` / ``image_std``; on hvlm's 0-255 frames
    that is one normalisation with both divided by ``rescale_factor``. The
    size is ``crop_size`` when the processor crops, else ``size``
    (``height``/``width`` or ``shortest_edge``: a square).
    """
    name = 'preprocessor_config.json'
    cfg = read_json(path, name)
    scale = cfg.get('rescale_factor', 1 / 255) if cfg.get(
        'do_rescale', True) else 1.
    if cfg.get('do_normalize', True):
        stats = []
        for key in ('image_mean', 'image_std'):
            value = cfg.get(key)
            if not isinstance(value, list) or len(value) != channels:
                raise ValueError(
                    f'{path}/{name}: {key}={value!r} must list one value per '
                    f'channel ({channels})')
            stats.append([v / scale for v in value])
        mean, std = stats
    else:
        mean, std = [0.] * channels, [1. / scale] * channels
    size = cfg.get('crop_size') if cfg.get('do_center_crop', True) else None
    size = size or cfg.get('size')
    if isinstance(size, int):
        size = dict(shortest_edge=size)
    if isinstance(size, dict) and 'height' in size and 'width' in size:
        hw = (int(size['height']), int(size['width']))
    elif isinstance(size, dict) and 'shortest_edge' in size:
        hw = (int(size['shortest_edge']), ) * 2
    else:
        raise ValueError(
            f'{path}/{name}: no image size: expected crop_size or size with '
            f'height/width or shortest_edge, got {size!r}')
    return mean, std, hw


class HFPretrainedTower(BaseModule):
    """What the image and the text encoder share: loading one tower from a
    local directory, freezing, unfreezing by name and checkpointing.

    Args:
        pretrained (str): Local directory written by ``save_pretrained``.
        tower (str): ``'vision'`` or ``'text'``.
        freeze (bool): Freeze every weight (no gradients, eval mode even
            when the Runner calls ``train()``).
        unfreeze (Sequence[str]): ``fnmatch`` patterns of parameter names
            (as in ``encoder.model.named_parameters()``, e.g.
            ``'vision_model.encoder.layers.11.*'``) that train although
            ``freeze=True``. Each pattern must match a parameter.
        with_cp (bool): Gradient checkpointing in the trainable layers
            (non-reentrant, so every trainable weight gets its gradient).
        embed_dims (int, optional): Width of the tokens the config expects;
            ``None`` accepts the checkpoint's.
        out_dims (int, optional): Width of the pooled embedding the config
            expects; ``None`` accepts the checkpoint's.
    """

    def __init__(self,
                 pretrained: str,
                 tower: str,
                 freeze: bool = True,
                 unfreeze: Sequence[str] = (),
                 with_cp: bool = False,
                 embed_dims: Optional[int] = None,
                 out_dims: Optional[int] = None) -> None:
        super().__init__()
        unfreeze = (unfreeze, ) if isinstance(unfreeze, str) else tuple(
            unfreeze)
        if unfreeze and not freeze:
            raise ValueError(f'unfreeze={unfreeze} needs freeze=True (with '
                             'freeze=False every weight trains already)')
        self.pretrained = pretrained
        self.tower = tower
        config = check_directory(pretrained)
        self.family, self.tower_cfg, self.key_prefix = tower_config(
            config, pretrained, tower)
        hidden = self.tower_cfg.get('hidden_size')
        if not isinstance(hidden, int):
            raise ValueError(f'{pretrained}/config.json has no '
                             f'{self.key_prefix}hidden_size')
        check_width(pretrained, self.key_prefix + 'hidden_size', hidden,
                    'embed_dims', embed_dims)
        self.model = load_tower(pretrained, self.family, tower)
        self.embed_dims = hidden
        self.out_dims, out_key = self._out_dims()
        check_width(pretrained, self.key_prefix + out_key, self.out_dims,
                    'out_dims', out_dims)
        self.freeze = freeze
        self.unfreeze = unfreeze
        self._set_requires_grad()
        if with_cp:
            # renamed activation_checkpointing_enable in transformers 5
            enable = getattr(self.model, 'activation_checkpointing_enable',
                             None) or self.model.gradient_checkpointing_enable
            enable(dict(use_reentrant=False))
        self._remember_loaded()
        self.train(self.training)

    def _out_dims(self) -> Tuple[int, str]:
        """Width of the pooled embedding and its config.json key."""
        raise NotImplementedError

    def _set_requires_grad(self) -> None:
        names = [n for n, _ in self.model.named_parameters()]
        for pattern in self.unfreeze:
            if not any(fnmatch(n, pattern) for n in names):
                raise ValueError(
                    f'unfreeze pattern {pattern!r} matches no parameter of '
                    f'{self.pretrained}; names look like {names[:3]} ... '
                    f'{names[-2:]}')
        for name, param in self.model.named_parameters():
            param.requires_grad = not self.freeze or any(
                fnmatch(name, p) for p in self.unfreeze)

    @property
    def trainable(self) -> bool:
        """Whether any weight of the tower trains."""
        return any(p.requires_grad for p in self.model.parameters())

    def train(self, mode: bool = True) -> 'HFPretrainedTower':
        self.training = mode
        set_train_mode_by_grad(self.model, mode)
        return self

    def _remember_loaded(self) -> None:
        """Note each loaded weight (the parameter object itself, which
        adapters wrapping a layer reuse and ``.to()`` keeps) with its
        :func:`fingerprint`, to notice a re-initialisation later."""
        self._loaded = [(name, p, fingerprint(p))
                        for name, p in self.model.named_parameters()]

    def init_weights(self) -> None:
        """Keep the pretrained weights.

        The Runner calls ``init_weights`` on the whole model:
        transformers' own would re-initialise the tower, and an enclosing
        module's ``init_cfg`` (e.g. ``layer='Linear'``) has already
        overwritten its layers by the time this runs. Changed weights are
        read again from the directory; weights added since loading (LoRA
        factors) are left alone.
        """
        changed = [(name, p) for name, p, before in self._loaded
                   if not same_fingerprint(fingerprint(p), before)]
        if not changed:
            return
        print_log(
            f'{type(self).__name__}: {len(changed)} pretrained weights were '
            f'changed (e.g. by an init_cfg); reloading them from '
            f'{self.pretrained}',
            logger='current')
        fresh = load_tower(self.pretrained, self.family,
                           self.tower).state_dict()
        with torch.no_grad():
            for name, p in changed:
                p.copy_(fresh[name])

    def grad_context(self):
        """No autograd graph through a tower where nothing trains (its
        activations are not kept), autograd as usual otherwise."""
        return nullcontext() if self.trainable else torch.no_grad()

    def extra_repr(self) -> str:
        return (f'pretrained={self.pretrained!r}, family={self.family!r}, '
                f'freeze={self.freeze}, unfreeze={self.unfreeze}')
