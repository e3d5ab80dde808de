"""SceneLLM: a video's scene as tokens read by a language model, and the
graph decoded from the model's states.

After Zhang et al., "SceneLLM: Implicit Language Reasoning in LLM for
Dynamic Scene Graph Generation" (Pattern Recognition 2025). One batch:

1. **Region features** as :class:`STTran` builds them: per (person, object)
   pair, the subject and object RoI features (RoIAlign on the backbone's
   map), the union box with its box-mask image, and class embeddings (in
   SGCLS/SGDET the predicted class distribution, from STTran's object
   classifier): ``[P, D]``.
2. **Scene tokens**: each pair feature, layer-normalised, quantised by a
   codebook
   (:class:`~hvlm.models.layers.VectorQuantizer`, straight-through
   gradient, codebook and commitment losses; ``codebook_size``,
   ``num_codebooks``).
3. **Frame tokens**: the mean of a frame's scene tokens through a linear
   layer, one per frame, put before the frame's scene tokens, so that every
   pair of a frame reads (through the causal LM) a summary of the whole
   frame and of the frames before.
4. **Projector** (``'linear'`` or ``'mlp'``) into the LM's embedding space,
   plus a learned embedding of the token type (frame or scene token). One
   sequence per video, ``[frame 0] [pairs of 0] [frame 1] [pairs of 1]
   ...``; a video longer than ``max_sequence_tokens`` (default: the LM's
   context) is cut between frames into several sequences.
5. The **LM** (``HFCausalLM``), frozen, with LoRA if ``llm.lora`` is set:
   ``freeze_llm_epochs`` and ``set_llm_trainable`` are what
   :class:`~hvlm.engine.hooks.LLMStageHook` reads, as for the LLM head, and
   the LoRA factors take their own learning rate ``llm_lr`` through
   ``paramwise_cfg`` in the config.
6. **Graph decoder**: the LM's last hidden states at the scene-token
   positions, projected back to ``D``, through STTran's transformer blocks
   (``spatial_layer`` over the pairs of a frame, ``temporal_layer`` over
   windows of ``temporal_window`` frames) and its ``RelationHead``: softmax
   attention, sigmoid spatial and contacting, so ``predict`` writes what
   STTran writes and :class:`SceneGraphRecall` scores it unchanged.

The losses: the relation losses, ``loss_codebook``, ``loss_commitment``,
and in SGCLS/SGDET ``loss_object``. Nothing in ``predict`` reads
ground-truth predicates.

Differences from the paper, deliberate: the tokenizer is trained with the
model (the straight-through gradient of the relation losses, no separate
VQ-VAE reconstruction stage); the paper's optimal-transport spatial
aggregation is replaced by the mean of the frame's tokens; the decoder is
STTran's; the features come from hvlm's backbones, not a detector trained
on Action Genome.
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from hvlm.models.layers import VectorQuantizer
from hvlm.registry import MODELS
from .sttran import STTran

FRAME, SCENE = 0, 1  # token types


def frame_sequences(pair_frame: Tensor, offsets: List[int],
                    lengths: List[int], max_tokens: int
                    ) -> Tuple[Tensor, Tensor]:
    """The token layout of a batch: per video, per frame, one frame token
    and then the frame's pairs; a video is cut between frames into
    sequences of at most ``max_tokens`` tokens.

    Args:
        pair_frame (Tensor): ``[P]`` global frame of each pair.
        offsets, lengths: First global frame and frame count per video.
        max_tokens (int): Longest sequence.

    Returns:
        ``(index [S, L], mask [S, L])``: each position's token, ``f`` for
        the frame token of global frame ``f``, ``F + p`` for pair ``p``
        (``F`` = all frames); ``mask`` is 1 on tokens and 0 on the right
        padding (``index`` 0 there).
    """
    F_all = sum(lengths)
    counts = torch.bincount(pair_frame.cpu(), minlength=F_all).tolist()
    order = (torch.argsort(pair_frame.cpu(), stable=True) + F_all).tolist()
    starts = [0]
    for c in counts[:-1]:
        starts.append(starts[-1] + c)
    seqs = []
    for f0, T in zip(offsets, lengths):
        cur: List[int] = []
        for f in range(f0, f0 + T):
            frame = [f] + order[starts[f]:starts[f] + counts[f]]
            if len(frame) > max_tokens:
                raise ValueError(
                    f'SceneLLM: a frame with {counts[f]} pairs needs '
                    f'{len(frame)} tokens, more than max_sequence_tokens='
                    f'{max_tokens} (the LM\'s context by default)')
            if len(cur) + len(frame) > max_tokens:
                seqs.append(cur)
                cur = []
            cur += frame
        if cur:
            seqs.append(cur)
    L = max(len(s) for s in seqs)
    index = torch.zeros(len(seqs), L, dtype=torch.long)
    mask = torch.zeros(len(seqs), L, dtype=torch.long)
    for i, s in enumerate(seqs):
        index[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return index, mask


@MODELS.register_module()
class SceneLLM(STTran):
    """Scene tokens -> LM -> graph (see the module doc).

    Args:
        llm (dict): The LM (``MODELS``), e.g. ``dict(type='HFCausalLM',
            pretrained='work_dirs/scenellm_demo_lm', lora=dict(...))``.
        codebook_size (int): Entries of each codebook.
        num_codebooks (int): Codebooks, each quantising a slice of the
            pair feature (1: plain VQ).
        commitment_weight (float): VQ-VAE's ``beta``.
        dead_code_threshold (float): Restart codebook entries used less
            than this per batch on average (0: never).
        codebook_weight (float): Weight of the codebook loss.
        projector (str): ``'linear'`` or ``'mlp'`` into the LM.
        max_sequence_tokens (int, optional): Longest LM sequence; default
            the LM's context length.
        freeze_llm_epochs (int): Epochs before the LoRA factors train
            (with ``LLMStageHook`` in ``custom_hooks``).
        llm_domain (str, optional): The LoRA domain used; default the
            adapter's first training domain.
        feature_residual (bool): Add the pair feature before quantisation
            to what the decoder reads (the LM's state at the pair), so
            that the decoder sees what the codebook rounds away. Not in
            the paper.
        spatial_layer, temporal_layer (int): Blocks of the graph decoder.
        **kwargs: :class:`STTran` arguments (backbone, mode, hidden_dim,
            temporal_window, relation_head, ...).
    """

    def __init__(self,
                 llm: dict,
                 codebook_size: int = 512,
                 num_codebooks: int = 1,
                 commitment_weight: float = 0.25,
                 dead_code_threshold: float = 0.03,
                 codebook_weight: float = 1.0,
                 projector: str = 'mlp',
                 max_sequence_tokens: Optional[int] = None,
                 freeze_llm_epochs: int = 0,
                 llm_domain: Optional[str] = None,
                 feature_residual: bool = False,
                 spatial_layer: int = 1,
                 temporal_layer: int = 1,
                 **kwargs) -> None:
        if projector not in ('linear', 'mlp'):
            raise ValueError(f"SceneLLM: projector={projector!r} must be "
                             "'linear' or 'mlp'")
        if not isinstance(freeze_llm_epochs, int) or freeze_llm_epochs < 0:
            raise ValueError(f'SceneLLM: freeze_llm_epochs='
                             f'{freeze_llm_epochs!r} must be an integer >= 0')
        super().__init__(spatial_layer=spatial_layer,
                         temporal_layer=temporal_layer, **kwargs)
        D = self.frame_embed.embedding_dim
        # a bounded scale for the codebook to follow: without it the pair
        # features grow under the relation losses faster than the
        # commitment pulls them back, and the codebook loss climbs
        self.token_norm = nn.LayerNorm(D)
        self.quantizer = VectorQuantizer(
            D, codebook_size, num_codebooks, commitment_weight,
            codebook_weight, dead_code_threshold)
        self.frame_fc = nn.Linear(D, D)
        self.llm = MODELS.build(llm)
        C = self.llm.embed_dims
        self.projector = nn.Linear(D, C) if projector == 'linear' else \
            nn.Sequential(nn.Linear(D, C), nn.GELU(), nn.Linear(C, C))
        self.type_embed = nn.Embedding(2, C)
        self.llm_out = nn.Linear(C, D)
        self.max_sequence_tokens = max_sequence_tokens or \
            self.llm.context_length
        if self.max_sequence_tokens > self.llm.context_length:
            raise ValueError(
                f'SceneLLM: max_sequence_tokens={max_sequence_tokens} '
                f'exceeds the context of {self.llm.pretrained} '
                f'({self.llm.context_length})')
        self.freeze_llm_epochs = freeze_llm_epochs
        self.feature_residual = feature_residual
        adapter = self.llm.adapter
        if llm_domain is not None and (adapter is None or
                                       llm_domain not in adapter.domains):
            raise ValueError(
                f'SceneLLM: llm_domain={llm_domain!r} is not a domain of '
                'the LM\'s LoRA '
                f'({None if adapter is None else adapter.domains})')
        self.llm_domain = llm_domain if llm_domain is not None or \
            adapter is None else adapter.train_domains[0]

    def set_llm_trainable(self, flag: bool) -> None:
        """Switch what the LM trains on or off (``LLMStageHook``): its
        LoRA factors, and its base weights with ``llm.freeze=False``."""
        self.llm.set_trainable(flag)

    # ------------------------------------------------------------------
    def _read_with_llm(self, tokens: Tensor, g: Dict) -> Tensor:
        """Scene tokens ``[P, D]`` -> the LM's states at their positions,
        back in ``D``: ``[P, D]``."""
        pf = g['pair_frame']
        F_all = g['num_frames']
        count = torch.bincount(pf, minlength=F_all).clamp(min=1)
        pooled = tokens.new_zeros(F_all, tokens.shape[1]).index_add_(
            0, pf, tokens) / count[:, None].to(tokens.dtype)  # [F, D]
        frames = self.projector(self.frame_fc(pooled)) + \
            self.type_embed.weight[FRAME]  # [F, C]
        scenes = self.projector(tokens) + self.type_embed.weight[SCENE]
        table = torch.cat([frames, scenes])  # [F + P, C]
        index, mask = frame_sequences(pf, g['offsets'], g['lengths'],
                                      self.max_sequence_tokens)
        index, mask = index.to(tokens.device), mask.to(tokens.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        states = self.llm.hidden_states(
            table[index], mask, positions, domain_ids=self.llm_domain)
        flat = index[mask.bool()]  # [F + P]
        is_pair = flat >= F_all
        out = states.new_zeros(len(tokens), states.shape[-1])
        out[flat[is_pair] - F_all] = states[mask.bool()][is_pair]
        return self.llm_out(out.to(tokens.dtype))  # [P, D]

    def _contextualise(self, x: Tensor, g: Dict) -> Tensor:
        """Quantise, read with the LM, decode with STTran's blocks."""
        tokens, codes, g['vq_losses'] = self.quantizer(self.token_norm(x))
        g['codes'] = codes
        if len(x) == 0:
            return x
        h = self._read_with_llm(tokens, g)  # [P, D]
        if self.feature_residual:
            h = h + x
        return super()._contextualise(h, g)

    def _loss(self, x, obj_logits, g, samples) -> Dict[str, Tensor]:
        losses = super()._loss(x, obj_logits, g, samples)
        losses.update(g['vq_losses'])
        return losses

    @torch.no_grad()
    def _predict(self, x, obj_logits, g, samples) -> List[dict]:
        """STTran's outputs plus ``pred_codes`` ``[M, G]`` per video: the
        codebook entries of each pair's scene token."""
        out = super()._predict(x, obj_logits, g, samples)
        for v, o in enumerate(out):
            pairs = torch.nonzero(g['pair_video'] == v).flatten()
            o['pred_codes'] = g['codes'][pairs].cpu()
        return out
