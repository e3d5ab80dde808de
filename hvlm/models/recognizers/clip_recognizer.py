"""CLIPRecognizer: a frozen CLIP and learned prompts classify videos."""
import json
import math
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor

from hvlm.models.backbones import HFTextEncoder, HFVisionEncoder
from hvlm.models.layers import ClipTowers, TemporalPooling, encode_texts
from hvlm.registry import ADAPTERS, MODELS

MODES = ('loss', 'predict', 'tensor')
CLASSIFIERS = ('text', 'linear')
# CLIP's zero-shot ensemble for action videos, short enough for any CLIP.
DEFAULT_TEMPLATES = ('a video of a person {}.', 'a photo of a person {}.',
                     'a video of {}.')


def read_logit_scale(pretrained: str) -> float:
    """CLIP's trained ``logit_scale`` (a log) from the directory's
    weights, or config.json's ``logit_scale_init_value``."""
    path = osp.join(pretrained, 'model.safetensors')
    if osp.isfile(path):
        from safetensors import safe_open
        with safe_open(path, framework='pt') as f:
            if 'logit_scale' in f.keys():
                return float(f.get_tensor('logit_scale'))
    with open(osp.join(pretrained, 'config.json')) as f:
        return float(json.load(f).get('logit_scale_init_value',
                                      math.log(1 / 0.07)))


@MODELS.register_module()
class CLIPRecognizer(BaseModel):
    """Video classification with a frozen CLIP: frames -> image features
    -> temporal pooling -> cosine similarity with class text features.

    For a batch ``[B, V, C, T, H, W]`` (V views: temporal clips x crops)
    every frame goes through the image tower (with the learner's visual
    prompts, if any), is L2-normalised, pooled over the T frames
    (``temporal_pooling``), normalised again and compared with the
    normalised features of the class set: ``logits = s * v . t`` with a
    learnable ``s = exp(logit_scale)`` clamped at 100.

    - text side: the ``prompt_learner``'s features (VideoCoOp...), or,
      without one, the mean of CLIP's features of ``templates`` (zero-shot);
      fixed features are computed once per class set and cached, learned
      ones once per step for the whole class set, never per video or view
      (except for STT, whose prompts carry each clip's summary tokens).
    - ``classifier='linear'``: a linear probe on the pooled image features
      instead of text (needs ``num_classes``).
    - training: cross entropy of the view-averaged logits (VideoMix's mixed
      labels weigh two terms by the mixed volume fraction).
    - test: softmax probabilities averaged over the V views (MMAction2's
      ``average_clips='prob'``), written as ``pred_scores [K]`` and
      ``pred_label``.

    The class set comes from the dataset: ``RecognitionClassesHook`` calls
    :meth:`set_class_texts` with the dataset's ``class_texts`` before
    training, validation and test, so each loop uses its own classes (a
    base-to-novel test set has its own half).

    Args:
        pretrained (str): Local CLIP directory (both towers, tokenizer,
            preprocessor_config.json). ``model.pretrained=DIR`` sets it.
        prompt_learner (dict, optional): An ``ADAPTERS`` config.
        temporal_pooling (str): ``'mean'``, ``'max'`` or ``'attention'``.
        classifier (str): ``'text'`` or ``'linear'``.
        num_classes (int, optional): For ``classifier='linear'``.
        templates (Sequence[str]): Zero-shot prompt templates.
        class_texts (Sequence[str], optional): A class set to start with
            (e.g. for inference without a dataset).
        learn_logit_scale (bool): Train ``logit_scale``.
        max_logit_scale (float): Clamp of ``exp(logit_scale)``.
        frames_per_pass (int, optional): Most frames per image-tower pass.
        data_preprocessor (dict, optional): Defaults to
            ``RecognitionDataPreprocessor``; takes CLIP's pixel statistics.
    """

    def __init__(self,
                 pretrained: Optional[str] = None,
                 prompt_learner: Optional[dict] = None,
                 temporal_pooling: str = 'mean',
                 classifier: str = 'text',
                 num_classes: Optional[int] = None,
                 templates: Sequence[str] = DEFAULT_TEMPLATES,
                 class_texts: Optional[Sequence[str]] = None,
                 learn_logit_scale: bool = True,
                 max_logit_scale: float = 100.0,
                 frames_per_pass: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if not pretrained:
            raise ValueError(
                'CLIPRecognizer: model.pretrained must name a local CLIP '
                'directory (config.json, weights, tokenizer, '
                'preprocessor_config.json), e.g. --cfg-options '
                'model.pretrained=/data/clip-vit-base-patch16')
        if classifier not in CLASSIFIERS:
            raise ValueError(f'CLIPRecognizer: classifier={classifier!r} '
                             f'must be one of {CLASSIFIERS}')
        if data_preprocessor is None:
            data_preprocessor = dict(type='RecognitionDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.pretrained = pretrained
        self.image_encoder = HFVisionEncoder(pretrained, freeze=True,
                                             frames_per_pass=frames_per_pass)
        self.text_encoder = HFTextEncoder(pretrained, freeze=True)
        if self.image_encoder.family != 'clip':
            raise ValueError(f'CLIPRecognizer: {pretrained} is a '
                             f'{self.image_encoder.family} model; prompt '
                             'learning needs a CLIP')
        self.data_preprocessor.use_statistics(
            self.image_encoder.pixel_mean, self.image_encoder.pixel_std,
            f'{pretrained}/preprocessor_config.json')
        embed = self.image_encoder.model.visual_projection.out_features
        self.pooling = TemporalPooling(temporal_pooling, embed)
        self.temporal_pooling = temporal_pooling
        self.classifier = classifier
        self.linear = None
        if classifier == 'linear':
            if not num_classes:
                raise ValueError("CLIPRecognizer: classifier='linear' needs "
                                 'num_classes')
            self.linear = nn.Linear(embed, num_classes)
        self.templates = tuple(templates)
        self.logit_scale = nn.Parameter(
            torch.tensor(read_logit_scale(pretrained)),
            requires_grad=learn_logit_scale)
        self.max_logit_scale = max_logit_scale
        self.prompt_learner = None
        if prompt_learner is not None:
            self.prompt_learner = ADAPTERS.build(prompt_learner)
            self.prompt_learner.setup(self.towers)
        self.class_texts: Optional[Tuple[str, ...]] = None
        self._fixed_text: Optional[Tuple[Tuple[str, ...], Tensor]] = None
        # the class features of the current step, for the learner's losses
        self._step_text: Optional[Tensor] = None
        if class_texts is not None:
            self.set_class_texts(class_texts)

    # ------------------------------------------------------------------
    # CLIP
    # ------------------------------------------------------------------
    @property
    def towers(self) -> ClipTowers:
        text, image = self.text_encoder, self.image_encoder
        return ClipTowers(
            text_model=text.model.text_model,
            text_projection=text.model.text_projection,
            vision_model=image.model.vision_model,
            visual_projection=image.model.visual_projection,
            tokenizer=text.tokenizer,
            eos_token_id=text.eos_token_id,
            max_length=text.max_length)

    def set_class_texts(self, class_texts: Sequence[str]) -> None:
        """Use this class set (prompt text per label) from now on."""
        texts = tuple(class_texts)
        if not texts:
            raise ValueError('CLIPRecognizer: the class set is empty')
        if self.linear is not None and len(texts) != \
                self.linear.out_features:
            raise ValueError(
                f'CLIPRecognizer: the linear probe has num_classes='
                f'{self.linear.out_features} but the dataset has '
                f'{len(texts)} classes')
        self.class_texts = texts

    def _require_classes(self) -> Tuple[str, ...]:
        if self.class_texts is None:
            raise ValueError(
                'CLIPRecognizer: no class set; add RecognitionClassesHook '
                'to custom_hooks or pass class_texts')
        return self.class_texts

    def class_features(self) -> Tensor:
        """Normalised ``[K, D]`` features of the current class set."""
        self._require_classes()
        learner = self.prompt_learner
        if learner is not None and not learner.fixed_text:
            feats = learner.text_features(self.towers, self.class_texts)
            return F.normalize(feats, dim=-1)
        cached = self._fixed_text
        if cached is None or cached[0] != self.class_texts or \
                cached[1].device != self.logit_scale.device:
            with torch.no_grad():
                if learner is not None:
                    feats = F.normalize(
                        learner.text_features(self.towers, self.class_texts),
                        dim=-1)
                else:
                    feats = self.template_features(self.class_texts)
            cached = (self.class_texts, feats)
            self._fixed_text = cached
        return cached[1]

    def template_features(self, class_texts: Sequence[str]) -> Tensor:
        """CLIP's zero-shot class features: per class, the normalised mean
        of the normalised features of every template."""
        K = len(class_texts)
        texts = [t.format(c) for t in self.templates for c in class_texts]
        feats = F.normalize(encode_texts(self.towers, texts), dim=-1)
        feats = feats.view(len(self.templates), K, -1).mean(0)  # [K, D]
        return F.normalize(feats, dim=-1)

    # ------------------------------------------------------------------
    # Video
    # ------------------------------------------------------------------
    def video_features(self, inputs: Tensor,
                       frame_mask: Optional[Tensor] = None) -> Tensor:
        """Normalised ``[B, V, D]`` features of ``inputs [B, V, C, T, H,
        W]``; ``frame_mask [B, V, T]`` marks real (not padded) frames."""
        B, V, C, T = inputs.shape[:4]
        frames = inputs.permute(0, 1, 3, 2, 4, 5).flatten(0, 2)  # [BVT,C,H,W]
        frames = self.image_encoder._fit_size(frames)
        learner = self.prompt_learner
        visual = learner is not None and learner.learns_visual
        step = self.image_encoder.frames_per_pass or frames.shape[0]
        step = max(T, step - step % T)  # whole clips per pass (ViTA)
        feats = []
        if learner is not None:
            learner.start_batch()
        with torch.set_grad_enabled(torch.is_grad_enabled() and visual):
            for chunk in frames.split(step):
                if visual:
                    feats.append(learner.image_features(self.towers, chunk, T))
                else:
                    feats.append(self.image_encoder.model(
                        pixel_values=chunk).image_embeds)
        feats = F.normalize(torch.cat(feats), dim=-1)  # [BVT, D]
        feats = feats.view(B * V, T, -1)
        mask = None if frame_mask is None else frame_mask.reshape(B * V, T)
        video = F.normalize(self.pooling(feats, mask), dim=-1)  # [BV, D]
        return video.view(B, V, -1)

    def logits(self, inputs: Tensor,
               frame_mask: Optional[Tensor] = None) -> Tensor:
        """``[B, V, K]`` class logits per view."""
        video = self.video_features(inputs, frame_mask)  # [B, V, D]
        if self.linear is not None:
            return self.linear(video)
        scale = self.logit_scale.exp().clamp(max=self.max_logit_scale)
        learner = self.prompt_learner
        if learner is not None and learner.per_clip_text:
            B, V, D = video.shape
            text = F.normalize(learner.clip_text_features(
                self.towers, self._require_classes()), dim=-1)
            self._step_text = text  # [B * V, K, D]
            text = text.view(B, V, -1, D)
            return scale * torch.einsum('bvd,bvkd->bvk', video, text)
        text = self.class_features()  # [K, D]
        self._step_text = text
        return scale * video @ text.t()

    @staticmethod
    def _frame_mask(data_samples, inputs: Tensor) -> Optional[Tensor]:
        masks = [s.get('frame_mask') for s in data_samples or ()]
        if not masks or all(m is None for m in masks):
            return None
        B, V, _, T = inputs.shape[:4]
        out = torch.ones(B, V, T, dtype=torch.bool, device=inputs.device)
        for i, m in enumerate(masks):
            if m is not None:
                out[i] = torch.as_tensor(m, dtype=torch.bool).view(V, T)
        return out

    def loss(self, logits: Tensor, data_samples) -> Dict[str, Tensor]:
        """Cross entropy of the view-averaged logits ``[B, K]``; a sample
        mixed by VideoMix (``mix_label``, ``mix_lambda``) contributes
        ``lam * CE(label) + (1 - lam) * CE(mix_label)``."""
        logits = logits.mean(1)  # [B, K]
        labels = torch.stack([s.gt_label.reshape(-1)[0]
                              for s in data_samples]).to(logits.device)
        logp = logits.log_softmax(-1)
        nll = -logp.gather(1, labels[:, None])[:, 0]  # [B]
        lam = torch.tensor([float(s.get('mix_lambda', 1.0))
                            for s in data_samples], device=logits.device)
        mixed = [int(s.get('mix_label', -1)) for s in data_samples]
        other = torch.tensor([m if m >= 0 else 0 for m in mixed],
                             device=logits.device)
        nll_other = -logp.gather(1, other[:, None])[:, 0]
        loss = lam * nll + (1 - lam) * nll_other
        return dict(loss_cls=loss.mean())

    def forward(self,
                inputs: Optional[Tensor],
                data_samples: Optional[list] = None,
                mode: str = 'tensor'
                ) -> Union[Dict[str, Tensor], list, Tensor]:
        """``'loss'`` -> ``dict(loss_cls)``; ``'predict'`` -> the data
        samples with ``pred_scores`` and ``pred_label``; ``'tensor'`` ->
        logits ``[B, V, K]``."""
        if mode not in MODES:
            raise ValueError(f'mode={mode!r} is not one of {MODES}')
        if inputs is None:
            if mode == 'predict':
                return []
            if mode == 'loss':
                zero = sum(p.sum() * 0 for p in self.parameters()
                           if p.requires_grad)
                return dict(loss_cls=zero)
            raise ValueError("mode='tensor' needs inputs")
        logits = self.logits(inputs, self._frame_mask(data_samples, inputs))
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            losses = self.loss(logits, data_samples)
            if self.prompt_learner is not None and self.linear is None:
                losses.update(self.prompt_learner.extra_losses(
                    self.towers, self.class_texts, self._step_text))
            return losses
        probs = logits.float().softmax(-1).mean(1)  # [B, K]
        for sample, p in zip(data_samples, probs):
            sample.pred_scores = p.detach()
            sample.pred_label = p.argmax().reshape(1)
        return data_samples
