"""Video-text contrastive pretraining (CLIP / ActionCLIP style)."""
import hashlib
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor

from hvlm.registry import MODELS
from ..backbones.hf_pretrained import (check_directory, check_width,
                                       import_transformers, load_tokenizer,
                                       quiet_transformers,
                                       read_image_statistics, tower_config)
from .nt_xent import gather_with_grad
from .clip_scratch import (BOS_ID, EOS_ID, PAD_ID, byte_tokenizer,
                           preprocessor_config, save_clip_directory,
                           scratch_clip)


def text_ids(texts: Sequence[str], device) -> Tensor:
    """A stable 63-bit id per text (BLAKE2b of its UTF-8 bytes), equal on
    every rank for equal texts (Python's ``hash`` differs per process)."""
    ids = [
        int.from_bytes(
            hashlib.blake2b(t.encode('utf-8'), digest_size=8).digest(),
            'little') >> 1 for t in texts
    ]
    return torch.tensor(ids, dtype=torch.long, device=device)


def gather_no_grad(x: Tensor) -> Tensor:
    if not (dist.is_available() and dist.is_initialized()) or \
            dist.get_world_size() == 1:
        return x
    out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out)


def contrastive_loss(video: Tensor, text: Tensor, ids: Tensor,
                     logit_scale: Tensor) -> Dict[str, Tensor]:
    """Symmetric InfoNCE between L2-normalised ``video [N, D]`` and
    ``text [N, D]``, row i of each a positive pair.

    Texts equal to each other (``ids``) are the same target: a video's
    target distribution is uniform over every column whose text equals its
    own (ActionCLIP's answer to repeated label prompts in one batch), and
    symmetrically for texts. With distinct texts this is CLIP's loss:
    ``(CE(s V T^T, I) + CE(s T V^T, I)) / 2``.
    """
    logits = logit_scale * video @ text.t()  # [N, N]
    same = (ids[:, None] == ids[None, :]).float()  # [N, N]
    target = same / same.sum(1, keepdim=True)
    v2t = -(target * F.log_softmax(logits, 1)).sum(1).mean()
    t2v = -(target * F.log_softmax(logits.t(), 1)).sum(1).mean()
    return dict(loss_v2t=v2t / 2, loss_t2v=t2v / 2)


@MODELS.register_module()
class VideoTextContrastive(BaseModel):
    """A video encoder and a text encoder trained to agree, as CLIP trains
    images and texts and ActionCLIP videos and label texts.

    The video encoder is a CLIP image tower applied to every frame of the
    clip, its projected embeddings averaged over frames and clips
    (ActionCLIP's mean pooling): so the trained tower *is* a CLIP image
    encoder and exports as one. The text tower is CLIP's (causal mask,
    padding masked, final LayerNorm, pooled at the end token, projected).
    The loss is CLIP's symmetric InfoNCE with a learnable temperature
    (``logit_scale``, clamped at ``max_logit_scale``), over the global
    batch: features are gathered from every rank with their gradients
    (:func:`gather_with_grad`): every rank computes the same global loss
    and, after DDP averages, the weights get the gradient of the
    single-process loss over the global batch.
    Equal texts in a batch (two videos of one action, paired with the same
    label prompt) share one target, see :func:`contrastive_loss`.

    Start from a checkpoint (``pretrained=DIR``, a local CLIP directory) or
    from scratch (``scratch=dict(vision=..., text=..., projection_dim=...)``
    with transformers' ``CLIPVisionConfig`` / ``CLIPTextConfig`` arguments);
    from scratch the tokenizer is :func:`byte_tokenizer` unless
    ``tokenizer=DIR`` names a saved one. :meth:`save_pretrained` writes
    both towers, the tokenizer and the preprocessor config as a Hugging
    Face CLIP directory that ``HFVisionEncoder`` / ``HFTextEncoder`` (or
    ``transformers.CLIPModel``) load.

    Predictions (``predict``) write into each data sample
    ``pred_video_embed [D]`` and ``pred_text_embed [D]`` (of the sample's
    ``text``, L2-normalised) and ``pred_class_scores [C]``, the cosine
    similarities with the texts of every class (``class_texts`` of the
    sample's metainfo, encoded once per batch), which
    ``VideoTextRetrievalMetric`` scores.

    Args:
        pretrained (str, optional): Local CLIP directory to start from.
        scratch (dict, optional): ``vision``, ``text`` (config arguments)
            and ``projection_dim``; exactly one of ``pretrained`` and
            ``scratch`` is given.
        tokenizer (str, optional): Directory of a saved tokenizer for a
            scratch model; ``None``: :func:`byte_tokenizer`.
        max_length (int, optional): Longest tokenisation (texts are
            truncated keeping the end token); ``None``: the text tower's
            ``max_position_embeddings``.
        init_logit_scale (float): Initial ``exp(logit_scale)`` (CLIP: 1 /
            0.07) for a scratch model; a checkpoint keeps its own.
        max_logit_scale (float): Clamp of ``exp(logit_scale)`` (CLIP: 100).
        with_cp (bool): Gradient checkpointing in both towers.
        frames_per_pass (int, optional): Most frames through the image
            tower at once.
        data_preprocessor (dict, optional): ``VideoDataPreprocessor``
            config. With ``pretrained``, mean/std come from the checkpoint's
            ``preprocessor_config.json`` (leave them None); from scratch
            they are the config's and are exported with the model.
    """

    def __init__(self,
                 pretrained: Optional[str] = None,
                 scratch: Optional[dict] = None,
                 tokenizer: Optional[str] = None,
                 max_length: Optional[int] = None,
                 init_logit_scale: float = 1 / 0.07,
                 max_logit_scale: float = 100.,
                 with_cp: bool = False,
                 frames_per_pass: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='VideoDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            # hvlm's registry, whatever the caller's default scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if (pretrained is None) == (scratch is None):
            raise ValueError(
                'VideoTextContrastive: give exactly one of pretrained=DIR '
                '(a local CLIP directory) and scratch=dict(vision=..., '
                f'text=..., projection_dim=...); got pretrained={pretrained!r}'
                f' scratch={scratch!r}')
        if frames_per_pass is not None and frames_per_pass < 1:
            raise ValueError(
                f'frames_per_pass={frames_per_pass} must be >= 1 or None')
        self.pretrained = pretrained
        self.frames_per_pass = frames_per_pass
        self.max_logit_scale = float(max_logit_scale)
        if pretrained is not None:
            self._load_pretrained(pretrained)
        else:
            self._build_scratch(scratch, tokenizer, init_logit_scale)
        text_cfg = self.clip.config.text_config
        positions = int(text_cfg.max_position_embeddings)
        self.max_length = positions if max_length is None else max_length
        if not 1 < self.max_length <= positions:
            raise ValueError(
                f'max_length={max_length} must be in 2..{positions} (the '
                'text tower\'s max_position_embeddings)')
        self.eos_token_id = int(text_cfg.eos_token_id)
        ends = self.tokenizer('a')['input_ids']
        if not ends or ends[-1] != self.eos_token_id:
            last = ends[-1] if ends else None
            raise ValueError(
                f'the tokenizer ends a text with id {last}'
                f' but the text tower pools at eos_token_id='
                f'{self.eos_token_id}; use the tokenizer saved with the model')
        if with_cp:
            enable = getattr(self.clip, 'activation_checkpointing_enable',
                             None) or self.clip.gradient_checkpointing_enable
            enable(dict(use_reentrant=False))
        self.image_size = int(self.clip.config.vision_config.image_size)

    # ------------------------------------------------------------------
    # Construction
    # ------------------------------------------------------------------
    def _load_pretrained(self, path: str) -> None:
        config = check_directory(path)
        family, text_cfg, prefix = tower_config(config, path, 'text')
        tower_config(config, path, 'vision')
        if family != 'clip' or prefix == '':
            raise ValueError(
                f'{path}: VideoTextContrastive continues a whole CLIP model '
                f'(model_type "clip"), not {config.get("model_type")!r}')
        transformers = import_transformers()
        with quiet_transformers():
            try:
                clip, info = transformers.CLIPModel.from_pretrained(
                    path, local_files_only=True, output_loading_info=True)
            except (OSError, ValueError, RuntimeError) as e:
                raise ValueError(f'cannot load a CLIP from {path}: {e}') from e
        missing = sorted(info.get('missing_keys', ()))
        if missing:
            raise ValueError(
                f'{path}: {len(missing)} weights are missing from the '
                f'weights file: {", ".join(missing[:5])}')
        self.clip = clip
        self.tokenizer = load_tokenizer(path, int(text_cfg['vocab_size']),
                                        prefix)
        mean, std, size = read_image_statistics(path, 3)
        check_width(path, 'vision_config.image_size',
                    int(clip.config.vision_config.image_size), 'image size',
                    size[0])
        self.data_preprocessor.use_statistics(
            mean, std, f'{path}/preprocessor_config.json')

    def _build_scratch(self, scratch: dict, tokenizer: Optional[str],
                       init_logit_scale: float) -> None:
        unknown = set(scratch) - {'vision', 'text', 'projection_dim'}
        if unknown or not {'vision', 'text', 'projection_dim'} <= set(scratch):
            raise ValueError(
                f'scratch={scratch} must have exactly the keys vision, text '
                f'and projection_dim (unknown: {sorted(unknown)})')
        if not getattr(self.data_preprocessor, 'normalise', False):
            raise ValueError(
                'a scratch VideoTextContrastive needs data_preprocessor '
                'mean/std (0-255 scale): they are exported with the model '
                'as its preprocessor_config.json')
        positions = int(scratch['text'].get('max_position_embeddings', 77))
        if tokenizer is None:
            self.tokenizer = byte_tokenizer(positions)
            ids = dict(
                vocab_size=len(self.tokenizer),
                eos_token_id=EOS_ID,
                pad_token_id=PAD_ID,
                bos_token_id=BOS_ID)
        else:
            vocab = int(scratch['text'].get('vocab_size', 1 << 30))
            self.tokenizer = load_tokenizer(tokenizer, vocab, 'text.')
            tok = self.tokenizer
            ids = dict(
                vocab_size=int(scratch['text'].get('vocab_size', len(tok))),
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id
                if tok.pad_token_id is not None else tok.eos_token_id,
                bos_token_id=tok.bos_token_id
                if tok.bos_token_id is not None else tok.eos_token_id)
            if ids['eos_token_id'] is None or ids['eos_token_id'] == 2:
                raise ValueError(
                    f'{tokenizer}: the tokenizer\'s end token id is '
                    f'{ids["eos_token_id"]}; CLIP needs a text end token '
                    'whose id is not 2 (transformers reads 2 as the old '
                    'convention of pooling at the largest id)')
        text = {
            k: v
            for k, v in scratch['text'].items() if k not in ('vocab_size', )
        }
        self.clip = scratch_clip(scratch['vision'], text,
                                 scratch['projection_dim'], **ids)
        with torch.no_grad():
            self.clip.logit_scale.fill_(math.log(init_logit_scale))

    def init_weights(self) -> None:
        """Keep transformers' initialisation (scratch) or the checkpoint's
        weights: an enclosing ``init_cfg`` would overwrite them."""

    # ------------------------------------------------------------------
    # Encoding
    # ------------------------------------------------------------------
    def encode_video(self, inputs: Tensor) -> Tensor:
        """``[B, num_clips, C, T, H, W]`` (or ``[B, C, T, H, W]``) frames,
        normalised -> L2-normalised video embeddings ``[B, D]``: the image
        tower's projected embedding of every frame, averaged."""
        if inputs.dim() == 5:
            inputs = inputs.unsqueeze(1)
        if inputs.dim() != 6:
            raise ValueError('expected [B, num_clips, C, T, H, W] frames, got '
                             f'{tuple(inputs.shape)}')
        B, N, C, T, H, W = inputs.shape
        frames = inputs.permute(0, 1, 3, 2, 4, 5).reshape(B * N * T, C, H, W)
        if (H, W) != (self.image_size, self.image_size):
            raise ValueError(
                f'frames are {H}x{W} but the image tower takes '
                f'{self.image_size}x{self.image_size}; make the pipeline '
                'crop/resize to that size')
        step = self.frames_per_pass or frames.shape[0]
        embeds = [
            self.clip.visual_projection(
                self.clip.vision_model(pixel_values=chunk).pooler_output)
            for chunk in frames.split(step)
        ]
        video = torch.cat(embeds).view(B, N * T, -1).mean(1)
        return F.normalize(video, dim=-1)

    def tokenize(self, texts: Sequence[str]) -> Dict[str, Tensor]:
        batch = self.tokenizer(
            list(texts),
            padding='longest',
            truncation=True,
            max_length=self.max_length,
            return_tensors='pt')
        device = self.clip.logit_scale.device
        return dict(
            input_ids=batch['input_ids'].to(device),
            attention_mask=batch['attention_mask'].to(device))

    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """Texts -> L2-normalised text embeddings ``[B, D]``."""
        batch = self.tokenize(texts)
        pooled = self.clip.text_model(**batch).pooler_output
        return F.normalize(self.clip.text_projection(pooled), dim=-1)

    @property
    def logit_scale(self) -> Tensor:
        """``exp(logit_scale)``, clamped at ``max_logit_scale``."""
        return self.clip.logit_scale.exp().clamp(max=self.max_logit_scale)

    # ------------------------------------------------------------------
    # BaseModel
    # ------------------------------------------------------------------
    @staticmethod
    def _texts(data_samples) -> List[str]:
        texts = []
        for i, s in enumerate(data_samples):
            text = s.metainfo.get('text')
            if not isinstance(text, str):
                raise ValueError(
                    f'data sample {i} ({s.metainfo.get("video_id")}) has no '
                    'text: the pipeline needs SampleText before '
                    "PackVideoInputs, and 'text' in its meta_keys")
            texts.append(text)
        return texts

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], list,
                                               Tensor]:
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.encode_video(inputs)
        raise ValueError(f'mode={mode!r}: expected loss, predict or tensor')

    def loss(self, inputs: Tensor, data_samples: list) -> Dict[str, Tensor]:
        texts = self._texts(data_samples)
        video = gather_with_grad(self.encode_video(inputs))
        text = gather_with_grad(self.encode_text(texts))
        ids = gather_no_grad(text_ids(texts, video.device))
        losses = contrastive_loss(video, text, ids, self.logit_scale)
        losses['logit_scale'] = self.logit_scale.detach()
        return losses

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: list) -> list:
        video = self.encode_video(inputs)
        texts = self._texts(data_samples)
        text = self.encode_text(texts)
        classes = data_samples[0].metainfo.get('class_texts')
        class_embeds = self.encode_text(classes) if classes else None
        for i, sample in enumerate(data_samples):
            sample.set_field(video[i], 'pred_video_embed')
            sample.set_field(text[i], 'pred_text_embed')
            if class_embeds is not None:
                sample.set_field(class_embeds @ video[i], 'pred_class_scores')
        return data_samples

    # ------------------------------------------------------------------
    # Export
    # ------------------------------------------------------------------
    def save_pretrained(self, out_dir: str, overwrite: bool = False) -> str:
        """Write the model as a Hugging Face CLIP directory (config.json,
        model.safetensors, tokenizer files, preprocessor_config.json with
        the data preprocessor's mean/std and the tower's image size).
        ``logit_scale`` is exported clamped, as the model uses it."""
        pre = self.data_preprocessor
        mean = pre.mean.flatten().tolist()
        std = pre.std.flatten().tolist()
        with torch.no_grad():
            saved = self.clip.logit_scale.detach().clone()
            self.clip.logit_scale.clamp_(max=math.log(self.max_logit_scale))
            try:
                return save_clip_directory(
                    out_dir, self.clip, self.tokenizer,
                    preprocessor_config(self.image_size, mean, std),
                    overwrite)
            finally:
                self.clip.logit_scale.copy_(saved)
