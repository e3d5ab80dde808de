"""The whole model: preprocessor, hierarchical backbone, domain modules
(LoRA adapters, router, experts) and task heads."""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor

from hvlm.registry import ADAPTERS, HEADS, MODELS
from hvlm.structures import OptSampleList, SampleList
from hvlm.structures import VideoFeatures
from ..experts.domain_router import Routing

MODES = ('loss', 'predict', 'tensor')


@MODELS.register_module()
class HierarchicalVLM(BaseModel):
    """A video is ``num_clips`` clips; each clip is encoded on its own (so
    memory grows linearly with video length) and the heads regroup the clips
    of a video with ``VideoFeatures.num_clips``.

    An empty batch (every video skipped by the pipeline) gives ``[]`` in
    ``predict`` mode and a zero loss connected to every parameter in
    ``loss`` mode, so the optimizer step and distributed gradient
    synchronisation carry on.

    Domain modules (all optional, and they must name the same domains in
    the same order, since they index the same routing weights):

    - ``adapter`` (``ADAPTERS``, e.g. ``LoRAAdapter``) is injected into the
      backbone's linears; with ``freeze_base=True`` everything but the
      chosen domains' LoRA factors is frozen when the model is built.
    - ``router`` (``DomainRouter``) reads the mean of the backbone's
      tubelet embeddings (one cheap convolution, so the routing decision is
      known before the adapted blocks run; computed on the base weights and
      reused by the backbone) and weights the domains of each video; its
      losses join the loss dict and ``predict`` writes ``pred_domain`` /
      ``pred_domain_scores``.
    - ``experts`` (``DomainExperts``) mix per-domain FFNs into the
      backbone's output tokens with the same weights.

    Which domain each video uses: in ``loss`` mode its metadata ``domain``
    where the adapter knows it (so each domain's adapter learns from its
    own videos while the router learns to predict it), otherwise the
    router's decision; in ``predict`` / ``tensor`` mode the router's decision,
    or, without a router, the metadata's domain (none when unknown: base
    weights). A router with ``force_domain`` overrides both.

    Args:
        backbone (dict): Config of the video backbone (``MODELS``).
        head (dict): Config of the head (``HEADS``), usually a
            ``MultiTaskHead``.
        data_preprocessor (dict, optional): Config of the preprocessor
            (``MODELS``); defaults to a ``VideoDataPreprocessor`` that only
            stacks and casts. A backbone with a pretrained stem sets its
            normalisation to the checkpoint's statistics.
        adapter (dict, optional): Config of the adapter (``ADAPTERS``).
        router (dict, optional): Config of the ``DomainRouter``
            (``MODELS``); ``in_channels`` defaults to the width of the
            backbone's first stage.
        experts (dict, optional): Config of the ``DomainExperts``
            (``MODELS``); ``in_channels`` defaults to the backbone's output
            width.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 data_preprocessor: Optional[dict] = None,
                 adapter: Optional[dict] = None,
                 router: Optional[dict] = None,
                 experts: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='VideoDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            # Build from hvlm's registry: mmengine's BaseModel would look in
            # its root registry, where hvlm's types are missing unless a
            # default scope is set.
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self._adopt_pixel_statistics()
        self.adapter = None
        if adapter is not None:
            self.adapter = ADAPTERS.build(adapter)
            self.adapter.inject(self.backbone)
        self.router = None
        if router is not None:
            router = dict(router)
            router.setdefault('in_channels', self._stem_channels())
            self.router = MODELS.build(router)
        self.experts = None
        if experts is not None:
            experts = dict(experts)
            experts.setdefault('in_channels',
                               getattr(self.backbone, 'out_channels', None))
            self.experts = MODELS.build(experts)
        self.domains = self._check_domains()
        self.head = HEADS.build(head)
        if self.adapter is not None and self.adapter.freeze_base:
            self.adapter.freeze(self)

    def _adopt_pixel_statistics(self) -> None:
        """Frames are normalised as the backbone's pretrained encoder was
        trained (its ``pixel_statistics``), never with numbers a config
        repeats."""
        stats = getattr(self.backbone, 'pixel_statistics', None)
        if stats is None:
            return
        if not hasattr(self.data_preprocessor, 'use_statistics'):
            raise ValueError(
                f'{type(self.data_preprocessor).__name__} cannot take the '
                f'pretrained encoder\'s pixel statistics ({stats[2]}); use '
                'VideoDataPreprocessor')
        self.data_preprocessor.use_statistics(*stats)

    def _stem_channels(self) -> int:
        dims = getattr(self.backbone, 'embed_dims', None)
        if not dims or not hasattr(self.backbone, 'patch_embed'):
            raise ValueError(
                f'router needs a backbone with patch_embed and embed_dims '
                f'(got {type(self.backbone).__name__}); set '
                'router.in_channels and use HierarchicalVideoEncoder')
        return dims[0]

    def _check_domains(self) -> Optional[Tuple[str, ...]]:
        """The domains shared by adapter, router and experts."""
        named = {
            name: tuple(part.domains)
            for name, part in (('adapter', self.adapter), ('router',
                                                           self.router),
                               ('experts', self.experts)) if part is not None
        }
        if len(set(named.values())) > 1:
            raise ValueError(
                'adapter, router and experts must list the same domains in '
                f'the same order, got {named}')
        return next(iter(named.values()), None)

    def gt_domain_ids(self, data_samples: SampleList) -> Tensor:
        """Index of each sample's metadata ``domain`` in :attr:`domains`,
        ``-1`` when it has none or it is not one of them: ``[B]``."""
        names = self.domains or ()
        return torch.tensor([
            names.index(s.get('domain')) if s.get('domain') in names else -1
            for s in data_samples
        ], dtype=torch.long)

    def embed_for_routing(
            self, clips: Tensor) -> Tuple[Tensor, Tuple[int, int, int]]:
        """The backbone's stem output ``([B*nc, N0, C0], grid)`` on the
        base weights: LoRA layers inside the stem (a pretrained ViT's) are
        switched off, so the routing decision never depends on the domain
        the previous batch selected."""
        if self.adapter is not None:
            self.adapter.select(None)
        return self.backbone.patch_embed(clips)

    def _stem_is_adapted(self) -> bool:
        """Whether LoRA layers live in the stem, so that the stem's output
        changes with the domain selected."""
        return self.adapter is not None and any(
            name.startswith('patch_embed.') for name in self.adapter.layers)

    def route(self, clips: Tensor, num_clips: int,
              data_samples: OptSampleList, mode: str,
              embedded: Optional[Tuple[Tensor, Tuple[int, int, int]]] = None
              ) -> Tuple[Optional[Tensor], Optional[Routing],
                         Optional[Tensor]]:
        """Decide each video's domain weights.

        Args:
            clips (Tensor): ``[B*num_clips, C, T, H, W]``.
            num_clips (int): Clips per video.
            data_samples (list, optional): Where the metadata domain is.
            mode (str): The forward mode.
            embedded (tuple, optional): :meth:`embed_for_routing` of
                ``clips`` when already computed.

        Returns:
            tuple: ``weights [B, D]`` (rows of zeros for videos without a
            domain; ``None`` when nothing selects a domain), the router's
            :class:`Routing` (or ``None``) and the metadata's domain ids
            ``[B]`` (or ``None``).
        """
        if self.domains is None:
            return None, None, None
        B, D = clips.shape[0] // num_clips, len(self.domains)
        gt = None if data_samples is None else self.gt_domain_ids(
            data_samples).to(clips.device)
        routing = None
        if self.router is not None:
            if embedded is None:
                embedded = self.embed_for_routing(clips)
            stem = embedded[0]  # [B*nc, N0, C0]
            pooled = stem.mean(1).reshape(B, num_clips, -1).mean(1)  # [B, C0]
            routing = self.router(pooled)
        known = None if gt is None else gt >= 0  # [B]
        gt_weights = None if gt is None else F.one_hot(
            gt.clamp(min=0), D).to(clips.dtype) * known[:, None]  # [B, D]
        if routing is None:
            return gt_weights, None, gt
        if mode == 'loss' and gt is not None and \
                self.router.force_domain is None:
            weights = torch.where(known[:, None], gt_weights,
                                  routing.weights.to(clips.dtype))
            return weights, routing, gt
        return routing.weights.to(clips.dtype), routing, gt

    def _select(self, weights: Optional[Tensor], num_clips: int) -> None:
        """Hand the per-clip decision to the adapter's LoRA layers: ids
        when every video has at most one domain, else the blend."""
        if self.adapter is None:
            return
        if weights is None:
            self.adapter.select(None)
            return
        weights = weights.repeat_interleave(num_clips, 0)  # [B*nc, D]
        one_hot = ((weights == 0) | (weights == 1)).all() and \
            bool((weights.sum(1) <= 1).all())
        if one_hot:
            ids = torch.where(weights.sum(1) > 0, weights.argmax(1),
                              -1)  # [B*nc]
            self.adapter.select(ids)
        else:
            self.adapter.select(weights)

    def extract_feat(self,
                     inputs: Tensor,
                     data_samples: OptSampleList = None) -> VideoFeatures:
        """Encode ``inputs [B, num_clips, C, T, H, W]`` (with the domains
        that ``predict`` mode would use)."""
        return self._encode(inputs, data_samples, 'predict')[0]

    def _encode(self, inputs: Tensor, data_samples: OptSampleList,
                mode: str) -> Tuple[VideoFeatures, Optional[Routing],
                                    Optional[Tensor]]:
        """The features, the router's decision and the metadata's domain
        ids (see :meth:`route`)."""
        if inputs.dim() != 6:
            raise ValueError('inputs must be [B, num_clips, C, T, H, W], got '
                             f'shape {tuple(inputs.shape)}')
        if getattr(self.data_preprocessor, 'cached_features', False):
            return self._encode_cached(inputs, data_samples, mode)
        B, num_clips = inputs.shape[:2]
        clips = inputs.flatten(0, 1)  # [B*num_clips, C, T, H, W]
        # The stem runs once: its output serves the router and, unless the
        # selected domain's LoRA changes it, the backbone (a pretrained ViT
        # stem is most of the cost).
        embedded = None if self.router is None else self.embed_for_routing(
            clips)
        weights, routing, gt = self.route(clips, num_clips, data_samples,
                                          mode, embedded)
        self._select(weights, num_clips)
        if embedded is None or self._stem_is_adapted():
            feats = self.backbone(clips)
        else:
            feats = self.backbone(clips, embedded=embedded)
        if self.experts is not None and weights is not None:
            feats.tokens = self.experts(
                feats.tokens,
                weights.repeat_interleave(num_clips, 0))  # [B*nc, N, C]
        feats.num_clips = num_clips
        return feats, routing, gt

    def _encode_cached(self, tokens: Tensor, data_samples: OptSampleList,
                       mode: str) -> Tuple[VideoFeatures, Optional[Routing],
                                           Optional[Tensor]]:
        """:meth:`_encode` on cached stem tokens ``[B, num_clips, T, h, w,
        C_enc]``: the stem's ViT is not run. Each sample's
        ``feature_encoder`` (written by ``LoadCachedFeatures``) must name
        this model's stem encoder."""
        from hvlm.datasets.feature_cache import encoder_identity
        stem = getattr(self.backbone, 'patch_embed', None)
        if not hasattr(stem, 'embed_tokens'):
            raise ValueError('data_preprocessor.cached_features=True needs '
                             'a backbone with a pretrained stem')
        if self._stem_is_adapted():
            raise ValueError('LoRA layers inside the stem change its tokens '
                             'per domain; a feature cache of the frozen '
                             'stem cannot stand for them')
        if getattr(self, '_stem_identity', None) is None:
            self._stem_identity = encoder_identity(stem.encoder)
        for sample in data_samples or ():
            made_by = sample.get('feature_encoder')
            if made_by != self._stem_identity:
                raise ValueError(
                    f'features of {sample.get("video_id")!r} were extracted '
                    f'by encoder {made_by!r}, but this model\'s stem is '
                    f'{self._stem_identity!r}')
        B, num_clips = tokens.shape[:2]
        tokens = tokens.flatten(0, 1)  # [B*num_clips, T, h, w, C_enc]
        if self.adapter is not None:
            self.adapter.select(None)
        embedded = stem.embed_tokens(tokens)  # ([B*nc, N0, C0], grid)
        weights, routing, gt = self.route(tokens, num_clips, data_samples,
                                          mode, embedded)
        self._select(weights, num_clips)
        feats = self.backbone(None, embedded=embedded, frame_tokens=tokens)
        if self.experts is not None and weights is not None:
            feats.tokens = self.experts(
                feats.tokens,
                weights.repeat_interleave(num_clips, 0))  # [B*nc, N, C]
        feats.num_clips = num_clips
        return feats, routing, gt

    def forward(self,
                inputs: Optional[Tensor],
                data_samples: OptSampleList = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], SampleList,
                                                object]:
        """Run in one of three modes.

        Args:
            inputs (Tensor, optional): ``[B, num_clips, C, T, H, W]``;
                ``None`` for an empty batch.
            data_samples (list[VideoDataSample], optional): Ground truth
                (``loss``) or where predictions go (``predict``).
            mode (str): ``'loss'`` -> dict of losses; ``'predict'`` ->
                data samples with predictions; ``'tensor'`` -> the head's
                raw outputs.
        """
        if mode not in MODES:
            raise ValueError(f'mode={mode!r} is not one of {MODES}')
        if inputs is None:
            if mode == 'predict':
                return []
            if mode == 'loss':
                return dict(loss_empty_batch=self._zero_loss())
            raise ValueError("mode='tensor' needs inputs, got None (an "
                             'empty batch)')
        if mode != 'tensor' and (data_samples is None
                                 or len(data_samples) != inputs.shape[0]):
            raise ValueError(
                f'mode={mode!r} needs one data sample per video: got '
                f'{0 if data_samples is None else len(data_samples)} for '
                f'{inputs.shape[0]} videos')
        feats, routing, gt = self._encode(inputs, data_samples, mode)
        if mode == 'tensor':
            return self.head(feats)
        if mode == 'loss':
            losses = self.head.loss(feats, data_samples)
            if routing is not None and gt is not None:
                losses.update(self.router.loss(routing, gt))
            return losses
        data_samples = self.head.predict(feats, data_samples)
        if routing is not None:
            self._write_domains(routing, data_samples)
        return data_samples

    def _write_domains(self, routing: Routing,
                       data_samples: SampleList) -> None:
        """``pred_domain`` (name) and ``pred_domain_scores [D]``."""
        scores = routing.weights if routing.logits is None else \
            routing.logits.softmax(-1)  # [B, D]
        best = scores.argmax(-1).tolist()
        for sample, row, d in zip(data_samples, scores.detach().cpu(), best):
            sample.pred_domain_scores = row
            sample.pred_domain = self.domains[d]

    def _zero_loss(self) -> Tensor:
        """0, but with every trainable parameter in its graph."""
        params: List[Tensor] = [
            p.sum() for p in self.parameters() if p.requires_grad
        ]
        if not params:
            return torch.zeros(())
        return torch.stack(params).sum() * 0.
