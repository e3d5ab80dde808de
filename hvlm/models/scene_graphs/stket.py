"""STKET: STTran's pair features with spatial and temporal prior knowledge
in the attention, and an ensemble of stage predictions.

After Pu et al., "Spatial-Temporal Knowledge-Embedded Transformer for Video
Scene Graph Generation" (AAAI 2023). From :class:`STTran` it keeps the pair
features (RoI, union box with box masks, class embeddings), the relation
heads, the loss and the prediction contract. Then:

- **Priors** counted on the *training* split (``SceneGraphPriorsHook``,
  with :func:`hvlm.datasets.count_scene_priors`): per object class the
  predicate co-occurrence ``P(p | class)`` and the transition ``P(q at t |
  p at t-1, class)``. They are buffers, so a checkpoint carries them.
- **Spatial knowledge-embedded layers**: the pairs of a frame attend to each
  other; each pair's prior ``P(. | class)`` (in SGCLS the predicted class
  distribution times the table) is embedded and added to its query and key,
  not its value.
- **Temporal knowledge-embedded layers**: each pair attends over the same
  object's pairs in the last ``temporal_window`` frames (itself included),
  with learned frame-offset embeddings; the prior added to query and key is
  the transition table applied to the *predicted* predicates of the
  object's pair one frame earlier (the spatial stage's probabilities),
  the co-occurrence prior where there is no earlier frame.
- **Ensemble**: the spatial stage, the temporal stage and their fusion each
  have relation heads and losses; prediction averages their probabilities.

Nothing at test time reads ground-truth predicates: the reference's test
script reads the ground-truth contacts when its threshold is 1.0, a leak
this model has no path for (ground-truth relation labels are read in
``_loss`` only). In SGCLS and SGDET the object identity used for tracks
and priors is the predicted class. SGDET takes its nodes and pairs from
STTran's layout (a detections file; in training the detections assigned to
the ground truth), and every stage learns the targets of those pairs.
"""
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hvlm.models.layers import Mlp
from hvlm.registry import HEADS, MODELS
from .sttran import PERSON, STTran, _pad_groups

NUM_PREDICATES = 26


class KnowledgeBlock(nn.Module):
    """Pre-norm transformer block whose queries and keys see
    ``tokens + knowledge`` and whose values see the tokens alone.

    Not an ``ATTENTIONS`` attention: that interface takes one token tensor,
    and STKET's point is that the prior steers *where* a token attends
    without being copied into what it reads.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0,
                 drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'KnowledgeBlock: dim={dim} is not divisible '
                             f'by num_heads={num_heads}')
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim)
        self.qk = nn.Linear(dim, 2 * dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: Tensor, knowledge: Tensor, valid: Tensor) -> Tensor:
        """``x``, ``knowledge`` ``[B, L, D]``, ``valid [B, L]`` bool ->
        ``[B, L, D]``."""
        B, L, D = x.shape
        h = self.norm1(x)
        q, k = self.qk(h + knowledge).chunk(2, -1)
        heads = lambda t: t.view(B, L, self.num_heads, -1).transpose(1, 2)  # noqa: E731,E501
        # a group with no valid token (padding only) attends to all: its
        # output is never read, and a fully masked row would give NaN
        valid = valid | ~valid.any(-1, keepdim=True)
        out = F.scaled_dot_product_attention(
            heads(q), heads(k), heads(self.v(h)),
            attn_mask=valid[:, None, None, :])  # [B, heads, L, d]
        x = x + self.drop(self.proj(out.transpose(1, 2).reshape(B, L, D)))
        return x + self.mlp(self.norm2(x))


def track_windows(video: Tensor, frame: Tensor, identity: Tensor,
                  window: int) -> Tensor:
    """For each pair, the pairs of the same video and object identity in
    frames ``t, t-1, ..., t-window+1`` (``[P, window]``, -1 where absent;
    column 0 is the pair itself). With several pairs of one identity in a
    frame, the first of them stands for it in other frames."""
    first = {}
    keys = list(zip(video.tolist(), identity.tolist(), frame.tolist()))
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    out = torch.full((len(keys), window), -1, dtype=torch.long)
    for i, (v, c, f) in enumerate(keys):
        out[i, 0] = i
        for d in range(1, window):
            out[i, d] = first.get((v, c, f - d), -1)
    return out.to(frame.device)


@MODELS.register_module()
class STKET(STTran):
    """STKET in PredCLS, SGCLS and SGDET (see the module doc).

    Args:
        spatial_layer (int): Spatial knowledge-embedded layers.
        temporal_layer (int): Temporal knowledge-embedded layers.
        temporal_window (int): Frames each temporal layer reads (the
            current one and ``temporal_window - 1`` before it).
        hidden_dim, num_heads, dropout: As :class:`STTran`.
        relation_head (dict, optional): ``HEADS`` config of each of the
            three stages' heads (default ``RelationHead``).
        **kwargs: Other :class:`STTran` arguments.
    """

    STAGES = ('spatial', 'temporal')

    def __init__(self,
                 spatial_layer: int = 1,
                 temporal_layer: int = 3,
                 temporal_window: int = 3,
                 hidden_dim: int = 256,
                 num_heads: int = 8,
                 dropout: float = 0.1,
                 relation_head: Optional[dict] = None,
                 **kwargs) -> None:
        # STTran's own encoder and decoder are replaced, so built empty
        super().__init__(spatial_layer=0, temporal_layer=0,
                         temporal_window=temporal_window,
                         hidden_dim=hidden_dim, num_heads=num_heads,
                         dropout=dropout, relation_head=relation_head,
                         **kwargs)
        D, K = hidden_dim, self.num_classes
        self.spatial_blocks = nn.ModuleList(
            KnowledgeBlock(D, num_heads, drop=dropout)
            for _ in range(spatial_layer))
        self.temporal_blocks = nn.ModuleList(
            KnowledgeBlock(D, num_heads, drop=dropout)
            for _ in range(temporal_layer))
        self.spatial_knowledge = nn.Sequential(
            nn.Linear(NUM_PREDICATES, D), nn.ReLU(inplace=True),
            nn.Linear(D, D))
        self.temporal_knowledge = nn.Sequential(
            nn.Linear(NUM_PREDICATES, D), nn.ReLU(inplace=True),
            nn.Linear(D, D))
        self.fuse = nn.Sequential(nn.Linear(2 * D, D), nn.LayerNorm(D))
        head = dict(relation_head or dict(type='RelationHead'))
        head['in_channels'] = D
        self.stage_heads = nn.ModuleDict(
            {s: HEADS.build(head) for s in self.STAGES})
        self.register_buffer('cooccurrence', torch.zeros(K, NUM_PREDICATES))
        self.register_buffer('transition',
                             torch.zeros(K, NUM_PREDICATES, NUM_PREDICATES))
        self.register_buffer('priors_counted', torch.zeros((),
                                                           dtype=torch.bool))

    # ------------------------------------------------------------------
    @torch.no_grad()
    def set_priors(self, counts: Dict[str, np.ndarray]) -> None:
        """Normalise :func:`count_scene_priors` counts into the prior
        buffers. A class never seen gets the frequencies over all classes;
        a predicate never followed (for a class) gets the class's
        co-occurrence as its transition row."""
        objects = torch.as_tensor(counts['objects'], dtype=torch.float64)
        co = torch.as_tensor(counts['cooccurrence'], dtype=torch.float64)
        if co.shape != self.cooccurrence.shape:
            raise ValueError(
                f'STKET.set_priors: cooccurrence has shape {tuple(co.shape)}'
                f', expected {tuple(self.cooccurrence.shape)} (num_classes='
                f'{self.num_classes})')
        overall = co.sum(0) / objects.sum().clamp(min=1)
        co = torch.where(objects[:, None] > 0,
                         co / objects.clamp(min=1)[:, None], overall)
        tr = torch.as_tensor(counts['transition'], dtype=torch.float64)
        frm = torch.as_tensor(counts['transition_from'],
                              dtype=torch.float64)
        tr = torch.where(frm[..., None] > 0,
                         tr / frm.clamp(min=1)[..., None],
                         co[:, None, :].expand_as(tr))
        self.cooccurrence.copy_(co)
        self.transition.copy_(tr)
        self.priors_counted.fill_(True)

    def _stage_probs(self, head, x: Tensor) -> Tensor:
        """``[P, 26]`` probabilities of one stage's head."""
        return torch.cat(head.predict(x), 1)

    def _contextualise(self, x: Tensor, g: Dict) -> Tensor:
        if not bool(self.priors_counted):
            raise RuntimeError(
                'STKET: the priors are not counted; train with '
                "custom_hooks=[dict(type='SceneGraphPriorsHook'), ...] (it "
                'counts them on the training split) or load a checkpoint '
                'of a trained STKET')
        P = len(x)
        if P == 0:
            g['stages'] = dict(spatial=x, temporal=x)
            return x
        # object identity: the given class, or (SGCLS) the predicted one
        dist = g['obj_dist'][g['obj']]  # [P, K]
        identity = dist.argmax(-1)

        # spatial knowledge: P(. | class) into queries and keys
        k_s = self.spatial_knowledge(dist @ self.cooccurrence)  # [P, D]
        padded, size, slot = _pad_groups(x, g['pair_frame'], g['num_frames'])
        know, _, _ = _pad_groups(k_s, g['pair_frame'], g['num_frames'])
        for block in self.spatial_blocks:
            padded = block(padded, know, size.bool())
        x_s = padded.reshape(-1, x.shape[1])[slot]  # [P, D]

        # temporal knowledge: transitions from the predicted predicates of
        # the same object one frame earlier
        win = track_windows(g['pair_video'], g['pair_frame'], identity,
                            self.temporal_window)  # [P, W]
        prev_probs = self._stage_probs(self.stage_heads['spatial'],
                                       x_s).detach()  # [P, 26]
        prev = win[:, 1] if win.shape[1] > 1 else win[:, 0].new_full((P, ),
                                                                     -1)
        has_prev = prev >= 0
        p_prev = prev_probs[prev.clamp(min=0)]  # [P, 26]
        trans = torch.einsum('pk,kab->pab', dist, self.transition)
        prior_t = torch.einsum('pa,pab->pb', p_prev, trans) / \
            p_prev.sum(1, keepdim=True).clamp(min=1e-6)
        prior_t = torch.where(has_prev[:, None], prior_t,
                              dist @ self.cooccurrence)
        k_t = self.temporal_knowledge(prior_t)  # [P, D]
        valid = win >= 0
        idx = win.clamp(min=0)
        offsets = torch.arange(win.shape[1], device=x.device)
        seq = x_s[idx] + self.frame_embed(offsets)[None]  # [P, W, D]
        seq_k = k_t[idx]
        for block in self.temporal_blocks:
            seq = block(seq, seq_k, valid)
        x_t = seq[:, 0]  # each pair's own slot

        g['stages'] = dict(spatial=x_s, temporal=x_t)
        return self.norm(self.fuse(torch.cat([x_s, x_t], 1)))

    def _pair_features(self, inputs, samples):
        x, obj_logits, g = super()._pair_features(inputs, samples)
        if obj_logits is None:
            g['obj_dist'] = F.one_hot(g['labels'], self.num_classes).to(
                x.dtype)
        else:
            # SGCLS/SGDET: the predicted distribution, never the given (or,
            # in SGDET training, the assigned) label; the person node is
            # the layout's, as STTran's class embedding takes it
            dist = obj_logits.softmax(-1).detach()
            person = F.one_hot(torch.tensor(PERSON, device=x.device),
                               self.num_classes).to(dist.dtype)
            g['obj_dist'] = torch.where(g['is_person'][:, None], person,
                                        dist)
        return x, obj_logits, g

    def _loss(self, x, obj_logits, g, samples) -> Dict[str, Tensor]:
        losses = super()._loss(x, obj_logits, g, samples)
        # the targets of the layout's pairs (in SGDET those of the
        # detections assigned to the ground truth), as STTran's head reads
        for stage, head in self.stage_heads.items():
            stage_losses = head.loss(g['stages'][stage], g['attention'],
                                     g['spatial'], g['contacting'])
            losses.update({
                k.replace('loss_', f'loss_{stage}_stage_'): v
                for k, v in stage_losses.items()
            })
        return losses

    @torch.no_grad()
    def _predict(self, x, obj_logits, g, samples) -> List[dict]:
        """STTran's outputs with the predicate scores replaced by the mean
        of the fused, spatial and temporal heads' probabilities."""
        out = super()._predict(x, obj_logits, g, samples)
        members = [self.relation_head.predict(x)] + [
            self.stage_heads[s].predict(g['stages'][s]) for s in self.STAGES
        ]
        mean = [sum(m[i] for m in members) / len(members) for i in range(3)]
        for v, o in enumerate(out):
            pairs = torch.nonzero(g['pair_video'] == v).flatten()
            for name, p in zip(('attention', 'spatial', 'contacting'), mean):
                o[f'pred_{name}'] = p[pairs].cpu()
        return out
