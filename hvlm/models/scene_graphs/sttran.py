"""STTran: spatial-temporal transformer for video scene graphs.

After Cong et al., "Spatial-Temporal Transformer for Dynamic Scene Graph
Generation" (ICCV 2021). Per frame, every (person, object) pair gets a
feature made of

- the subject's and the object's RoI features (RoIAlign on a backbone map),
- the union box's RoI feature plus a two-channel box-mask image (subject and
  object rasterised inside the union box) through two convolutions,
- the subject's and object's class embeddings (in SGCLS the embedding is the
  predicted class distribution times the embedding table, as STTran does);

a *spatial encoder* attends among the pairs of one frame; a *temporal
decoder* attends among the pairs of a sliding window of ``temporal_window``
frames, each pair carrying a learned embedding of its position in the window;
a pair in several windows averages their outputs. Relation heads then score
attention (softmax), spatial and contacting (sigmoid). In SGCLS an object
classifier on the RoI features predicts the object classes. In SGDET the
nodes are a detector's boxes (the data set's ``detections_file``), matched
to the ground truth for training as STTran's ``assign_relations`` does
(:mod:`.video_graph`); the classifier also learns background there.

Differences from the reference, deliberate: any number of videos per batch
(the reference takes one), pre-norm transformer blocks whose attention comes
from ``ATTENTIONS``, BCE for the multi-label groups (STTran: multi-label
margin), and a small CNN or any ``MODELS`` backbone instead of a Faster
R-CNN trained on Action Genome. Optional and not in the reference:
``box_geometry`` and ``motion_features`` (see the class doc).

Inputs (``PackSceneGraphInputs``): ``inputs`` a list of uint8
``[T, 3, H, W]`` videos, ``data_samples`` a list of dicts. Outputs of
``predict``: the samples with ``pred_*`` keys added (the contract of
:class:`SceneGraphRecall`).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor

from hvlm.models.layers import TransformerBlock, roi_align
from hvlm.registry import HEADS, MODELS
from .video_graph import video_graph

PERSON = 1  # class index of the person (0 is __background__)


def _box_masks(subj: Tensor, obj: Tensor, union: Tensor,
               size: int) -> Tensor:
    """Two-channel masks ``[P, 2, size, size]``: 1 inside the subject
    (channel 0) and object (channel 1) box, in union-box coordinates."""
    grid = (torch.arange(size, dtype=subj.dtype, device=subj.device) +
            0.5) / size  # [S]
    w = (union[:, 2] - union[:, 0]).clamp(min=1e-6)
    h = (union[:, 3] - union[:, 1]).clamp(min=1e-6)
    masks = []
    for box in (subj, obj):
        x1 = (box[:, 0] - union[:, 0]) / w
        x2 = (box[:, 2] - union[:, 0]) / w
        y1 = (box[:, 1] - union[:, 1]) / h
        y2 = (box[:, 3] - union[:, 1]) / h
        in_x = (grid[None] >= x1[:, None]) & (grid[None] <= x2[:, None])
        in_y = (grid[None] >= y1[:, None]) & (grid[None] <= y2[:, None])
        masks.append(in_y[:, :, None] & in_x[:, None, :])  # [P, S, S]
    return torch.stack(masks, 1).to(subj.dtype)


def _pad_groups(x: Tensor, group: Tensor,
                num_groups: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Rows of ``x [P, C]`` grouped by ``group [P]`` into ``[G, L, C]``
    (zero-padded), the ``size`` mask ``[G, L]`` (1 real, 0 padding) and
    each row's slot ``[P]`` (its flat index into ``G * L``)."""
    counts = torch.bincount(group, minlength=num_groups)
    L = int(counts.max()) if len(counts) else 0
    order = torch.argsort(group, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.empty_like(group)
    pos[order] = torch.arange(len(group), device=group.device) - \
        starts[group[order]]
    slot = group * L + pos
    out = x.new_zeros(num_groups * L, x.shape[1])
    out[slot] = x
    size = x.new_zeros(num_groups * L)
    size[slot] = 1
    return out.view(num_groups, L, -1), size.view(num_groups, L), slot


# per node: previous and next frame, (dx, dy, dlogw, dlogh, flag) each
MOTION_DIM = 10


def node_motion(boxes: Tensor, frames: Tensor, video: Tensor, link: Tensor,
                img_shape: Tuple[int, int]) -> Tensor:
    """Each node's motion against the same entity in the neighbouring
    frames: ``[N, 10]``.

    Args:
        boxes: ``[N, 4]`` xyxy, in the frame of ``img_shape``.
        frames: ``[N]`` frame index (consecutive within a video).
        video: ``[N]`` video index; ``link``: ``[N]`` entity class. A node's
            entity in frame ``f - 1`` (``f + 1``) is the node of the same
            video and class there whose box centre is nearest (Action
            Genome: the one person, an object class once per frame).
        img_shape: ``(H, W)``; displacements are divided by it.

    Returns:
        Columns 0-4 against the previous frame: ``(cx - cx_prev) / W``,
        ``(cy - cy_prev) / H``, ``log(w / w_prev)``, ``log(h / h_prev)``
        (clipped to [-3, 3]: an empty box is 1e-3 wide) and 1; columns
        5-9 the next frame's minus this one's, the same way.
        All five are 0 where there is no such entity (first or last frame,
        entity absent).
    """
    H, W = img_shape
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1e-3)
    same = (video[:, None] == video[None]) & (link[:, None] == link[None])
    dist = (c[:, None] - c[None]).square().sum(-1)  # [N, N]
    out = boxes.new_zeros(len(boxes), MOTION_DIM)
    norm = boxes.new_tensor([W, H])
    for k, step in enumerate((-1, 1)):
        cand = same & (frames[None] == frames[:, None] + step)
        has = cand.any(1)
        if not bool(has.any()):
            continue
        j = dist.masked_fill(~cand, float('inf')).argmin(1)[has]
        i = torch.nonzero(has).flatten()
        a, b = (j, i) if step < 0 else (i, j)  # later minus earlier
        cols = slice(5 * k, 5 * k + 5)
        out[i, cols] = torch.cat([
            (c[b] - c[a]) / norm, (wh[b] / wh[a]).log().clamp(-3, 3),
            boxes.new_ones(len(i), 1)], 1)
    return out


def mot_scale_tensor(scale: float, ref: Tensor) -> Tensor:
    """``motion_scale`` on the displacement columns, 1 on the flags."""
    one = [scale, scale, 1.0, 1.0, 1.0]
    return ref.new_tensor(one + one)


@MODELS.register_module()
class STTran(BaseModel):
    """STTran in PredCLS, SGCLS and SGDET (see the module doc).

    Args:
        backbone (dict): A ``MODELS`` config of a frame encoder returning
            ``[N, C, h, w]`` and exposing ``out_channels``.
        num_classes (int): Object classes incl. ``__background__`` and
            ``person`` (Action Genome: 37).
        mode (str): ``'predcls'`` (given boxes and labels), ``'sgcls'``
            (given boxes; classes predicted) or ``'sgdet'`` (a detector's
            boxes; classes predicted).
        hidden_dim (int): Pair feature width in the transformers.
        spatial_layer (int): Spatial encoder layers (STTran: 1).
        temporal_layer (int): Temporal decoder layers (STTran: 3).
        num_heads (int): Attention heads.
        temporal_window (int): Frames per sliding window (STTran: 2).
        roi_size (int): RoIAlign output size.
        mask_size (int): Side of the box-mask image.
        embed_dim (int): Class-embedding width.
        attention_cfg (dict): ``ATTENTIONS`` config of every block.
        relation_head (dict): ``HEADS`` config; ``in_channels`` is filled.
        obj_loss_weight (float): Weight of the SGCLS/SGDET object loss.
        assign_iou_threshold (float): SGDET training: IoU above which a
            detection is matched to a ground-truth box (STTran: 0.5).
        det_feature_dim (int, optional): SGDET: width of the detector's
            features in the detections file; they are projected and added
            to the RoI feature of each detected node (0 for supplied
            ground-truth boxes). None: not used.
        box_geometry (bool): Add an embedding of the subject's and object's
            box coordinates (normalised by the frame size) to each pair
            feature. Not in STTran, whose features carry relative position
            only (through the box mask): without it, where a person is, and
            so how it moves from frame to frame, is invisible to the model.
        motion_features (bool): Add an embedding of each pair's subject and
            object motion (:func:`node_motion`: the displacement and log
            scale change of the box against the same entity in the
            previous and next kept frame of its video, normalised by the
            frame size and times ``motion_scale``, with a presence flag
            each). An hvlm addition, not in STTran, TEMPURA or STKET: their
            pair features move with the boxes, so the temporal layers have
            no motion to compare. It reads the neighbouring frames' boxes,
            so a model with it is not a per-frame model. The entity link is
            (video, class), Action Genome's identity within a video (one
            person; objects by class): the given class in PredCLS, the
            predicted class in SGCLS, the detection's class in SGDET (its
            assigned class in training); never a predicate.
        motion_scale (float): Factor on the normalised displacements (in
            the demo a walker moves 1.5-3 % of the frame width from one kept
            frame to the next).
        mean, std (Sequence[float]): Frame normalisation (0-255 scale).
    """

    def __init__(self,
                 backbone: dict,
                 num_classes: int = 37,
                 mode: str = 'predcls',
                 hidden_dim: int = 256,
                 spatial_layer: int = 1,
                 temporal_layer: int = 3,
                 num_heads: int = 8,
                 temporal_window: int = 2,
                 roi_size: int = 7,
                 mask_size: int = 28,
                 embed_dim: int = 64,
                 dropout: float = 0.1,
                 attention_cfg: Optional[dict] = None,
                 relation_head: Optional[dict] = None,
                 obj_loss_weight: float = 1.0,
                 assign_iou_threshold: float = 0.5,
                 det_feature_dim: Optional[int] = None,
                 box_geometry: bool = False,
                 motion_features: bool = False,
                 motion_scale: float = 10.0,
                 mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375),
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if mode not in ('predcls', 'sgcls', 'sgdet'):
            raise ValueError(f"STTran: mode={mode!r} must be 'predcls', "
                             "'sgcls' or 'sgdet'")
        if temporal_window < 1:
            raise ValueError(f'STTran: temporal_window={temporal_window} '
                             'must be >= 1')
        self.mode = mode
        self.num_classes = num_classes
        self.roi_size = roi_size
        self.mask_size = mask_size
        self.temporal_window = temporal_window
        self.obj_loss_weight = obj_loss_weight
        self.assign_iou_threshold = assign_iou_threshold
        self._graph_for_loss = False  # set by forward
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1),
                             persistent=False)

        self.backbone = MODELS.build(backbone)
        C = self.backbone.out_channels
        roi_dim = C * roi_size * roi_size
        self.node_fc = nn.Sequential(
            nn.Linear(roi_dim, hidden_dim), nn.ReLU(inplace=True))
        self.det_feature_fc = nn.Linear(det_feature_dim, hidden_dim) \
            if det_feature_dim else None
        self.subj_fc = nn.Linear(hidden_dim, hidden_dim)
        self.obj_fc = nn.Linear(hidden_dim, hidden_dim)
        # box masks [P, 2, S, S] -> [P, C, S/4, S/4], added to the union
        # feature (STTran: conv, conv on a 27x27 mask)
        self.mask_conv = nn.Sequential(
            nn.Conv2d(2, C // 2, 7, stride=2, padding=3), nn.ReLU(True),
            nn.BatchNorm2d(C // 2),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1), nn.ReLU(True),
            nn.BatchNorm2d(C))
        self.union_fc = nn.Sequential(
            nn.Linear(roi_dim, hidden_dim), nn.ReLU(inplace=True))
        self.class_embed = nn.Embedding(num_classes, embed_dim)
        self.pair_fc = nn.Linear(3 * hidden_dim + 2 * embed_dim, hidden_dim)
        self.geometry_fc = nn.Linear(8, hidden_dim) if box_geometry else None
        self.motion_scale = motion_scale
        self.motion_fc = nn.Sequential(
            nn.Linear(2 * MOTION_DIM, hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim)) if motion_features else None
        if mode in ('sgcls', 'sgdet'):
            self.obj_classifier = nn.Sequential(
                nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True),
                nn.Linear(hidden_dim, num_classes))
        attention_cfg = attention_cfg or dict(type='FullAttention')

        def blocks(n):
            return nn.ModuleList(
                TransformerBlock(hidden_dim, num_heads, mlp_ratio=2.0,
                                 drop=dropout, attention_cfg=attention_cfg)
                for _ in range(n))

        self.spatial_encoder = blocks(spatial_layer)
        self.temporal_decoder = blocks(temporal_layer)
        self.frame_embed = nn.Embedding(temporal_window, hidden_dim)
        self.norm = nn.LayerNorm(hidden_dim)
        head = dict(relation_head or dict(type='RelationHead'))
        head['in_channels'] = hidden_dim
        self.relation_head = HEADS.build(head)

    # ------------------------------------------------------------------
    # Graph layout of a batch
    # ------------------------------------------------------------------
    def _layout(self, samples: List[dict], frame_offsets: List[int],
                device, train: bool = False) -> Dict[str, Tensor]:
        """Nodes and pairs of a batch: each video's :func:`video_graph`
        (for ``self.mode``), concatenated.

        Node boxes are scaled to the network input; ``orig_boxes`` keep
        the original pixels. ``subj``/``obj`` index nodes globally.
        """
        keys = ('boxes', 'orig_boxes', 'frames', 'labels', 'scores',
                'is_person', 'node_video', 'subj', 'obj', 'pair_video',
                'pair_frame', 'attention', 'spatial', 'contacting',
                'features')
        parts = {k: [] for k in keys}
        n = 0
        for v, (s, f0) in enumerate(zip(samples, frame_offsets)):
            vg = video_graph(s, self.mode, train, self.assign_iou_threshold)
            N = len(vg['boxes'])
            sx, sy = s['scale_factor']
            parts['boxes'].append(vg['boxes'] *
                                  torch.tensor([sx, sy, sx, sy]))
            parts['orig_boxes'].append(vg['boxes'])
            parts['frames'].append(vg['frames'] + f0)
            for k in ('labels', 'scores', 'is_person'):
                parts[k].append(vg[k])
            parts['node_video'].append(torch.full((N, ), v))
            parts['subj'].append(vg['pairs'][:, 0] + n)
            parts['obj'].append(vg['pairs'][:, 1] + n)
            parts['pair_video'].append(torch.full((len(vg['pairs']), ), v))
            parts['pair_frame'].append(vg['frames'][vg['pairs'][:, 0]] + f0)
            for k in ('attention', 'spatial', 'contacting', 'features'):
                if k in vg:
                    parts[k].append(vg[k])
            n += N
        return {k: torch.cat(p).to(device) for k, p in parts.items()
                if p and len(p) == len(samples)}

    # ------------------------------------------------------------------
    def _pair_features(self, inputs: List[Tensor], samples: List[dict]
                       ) -> Tuple[Tensor, Optional[Tensor], Dict]:
        lengths = [len(x) for x in inputs]
        offsets = [sum(lengths[:i]) for i in range(len(lengths))]
        frames = torch.cat(inputs).float()  # [F, 3, H, W]
        frames = (frames - self.mean) / self.std
        feats = self.backbone(frames)  # [F, C, h, w]
        scale = feats.shape[-1] / frames.shape[-1]
        g = self._layout(samples, offsets, frames.device,
                         train=self._graph_for_loss)
        if len(g['labels']) and int(g['labels'].max()) >= self.num_classes:
            raise ValueError(
                f'{type(self).__name__}: object class {int(g["labels"].max())}'
                f' in the data, but num_classes={self.num_classes}; set '
                "model.num_classes to len(the data set's metainfo['classes'])")

        rois = torch.cat([g['frames'][:, None].float(), g['boxes']], 1)
        node = roi_align(feats, rois, self.roi_size, scale, 2, aligned=True)
        node = self.node_fc(node.flatten(1))  # [N, D]
        if self.det_feature_fc is not None:
            if 'features' not in g:
                raise KeyError('STTran(det_feature_dim=...) needs detector '
                               'features in the detections file')
            node = node + self.det_feature_fc(g['features'])

        s, o = g['subj'], g['obj']
        sb, ob = g['boxes'][s], g['boxes'][o]
        union = torch.cat([torch.minimum(sb[:, :2], ob[:, :2]),
                           torch.maximum(sb[:, 2:], ob[:, 2:])], 1)
        u_rois = torch.cat([g['pair_frame'][:, None].float(), union], 1)
        u = roi_align(feats, u_rois, self.roi_size, scale, 2, aligned=True)
        masks = _box_masks(sb, ob, union, self.mask_size)  # [P, 2, S, S]
        m = self.mask_conv(masks)
        m = F.adaptive_avg_pool2d(m, self.roi_size)  # [P, C, r, r]
        u = self.union_fc((u + m).flatten(1))  # [P, D]

        obj_logits = None
        if self.mode in ('sgcls', 'sgdet'):
            obj_logits = self.obj_classifier(node)  # [N, K]
            if self.mode == 'sgcls':
                # given boxes are never background, objects never person
                obj_logits = obj_logits.clone()
                obj_logits[:, [0, PERSON]] = float('-inf')
            dist = obj_logits.softmax(-1)
            emb = dist @ self.class_embed.weight  # [N, E]
            person = self.class_embed.weight[PERSON].expand_as(emb)
            emb = torch.where(g['is_person'][:, None], person, emb)
        else:
            emb = self.class_embed(g['labels'])  # [N, E]
        x = torch.cat([self.subj_fc(node[s]), self.obj_fc(node[o]), u,
                       emb[s], emb[o]], 1)
        x = self.pair_fc(x)  # [P, D]
        if self.geometry_fc is not None:
            H, W = frames.shape[-2:]
            size = sb.new_tensor([W, H, W, H])
            x = x + self.geometry_fc(torch.cat([sb / size, ob / size], 1))
        if self.motion_fc is not None:
            if self.mode == 'sgcls':  # the given classes are ground truth
                link = obj_logits.argmax(-1)
                link[g['is_person']] = PERSON
            else:  # predcls: given; sgdet: detected (training: assigned)
                link = g['labels']
            H, W = frames.shape[-2:]
            mot = node_motion(g['boxes'], g['frames'], g['node_video'],
                              link.detach(), (H, W)) * \
                mot_scale_tensor(self.motion_scale, g['boxes'])
            g['motion'] = mot
            x = x + self.motion_fc(torch.cat([mot[s], mot[o]], 1))
        g['num_frames'] = sum(lengths)
        g['offsets'] = offsets
        g['lengths'] = lengths
        return x, obj_logits, g

    def _contextualise(self, x: Tensor, g: Dict) -> Tensor:
        """Spatial encoder per frame, then temporal decoder per window."""
        if len(x) == 0:
            return x
        padded, size, slot = _pad_groups(x, g['pair_frame'], g['num_frames'])
        for block in self.spatial_encoder:
            padded = block(padded, size=size)
        x = padded.reshape(-1, x.shape[1])[slot]  # [P, D]

        # windows of `temporal_window` consecutive frames per video
        W = self.temporal_window
        win_of_pair, pos_of_pair, rows = [], [], []
        num_windows = 0
        for f0, T in zip(g['offsets'], g['lengths']):
            starts = range(max(T - W + 1, 1))
            for st in starts:
                in_win = (g['pair_frame'] >= f0 + st) & \
                    (g['pair_frame'] < f0 + min(st + W, T))
                idx = torch.nonzero(in_win).flatten()
                rows.append(idx)
                win_of_pair.append(torch.full_like(idx, num_windows))
                pos_of_pair.append(g['pair_frame'][idx] - f0 - st)
                num_windows += 1
        rows = torch.cat(rows)
        win = torch.cat(win_of_pair)
        pos = torch.cat(pos_of_pair)
        y = x[rows] + self.frame_embed(pos)  # [R, D]
        padded, size, slot = _pad_groups(y, win, num_windows)
        for block in self.temporal_decoder:
            padded = block(padded, size=size)
        y = padded.reshape(-1, y.shape[1])[slot]  # [R, D]
        out = torch.zeros_like(x).index_add_(0, rows, y)
        count = torch.zeros(len(x), device=x.device).index_add_(
            0, rows, torch.ones(len(rows), device=x.device))
        return self.norm(out / count.clamp(min=1)[:, None])

    # ------------------------------------------------------------------
    def forward(self,
                inputs: List[Tensor],
                data_samples: Optional[List[dict]] = None,
                mode: str = 'tensor'):
        if isinstance(inputs, Tensor):
            inputs = list(inputs)
        # SGDET matches detections to the ground truth for the loss only;
        # prediction never reads the ground truth
        self._graph_for_loss = mode == 'loss'
        x, obj_logits, g = self._pair_features(inputs, data_samples)
        x = self._contextualise(x, g)
        if mode == 'loss':
            return self._loss(x, obj_logits, g, data_samples)
        if mode == 'predict':
            return self._predict(x, obj_logits, g, data_samples)
        return self.relation_head(x)

    def _loss(self, x, obj_logits, g, samples) -> Dict[str, Tensor]:
        losses = self.relation_head.loss(x, g['attention'], g['spatial'],
                                         g['contacting'])
        if obj_logits is not None:
            # sgcls: the given objects' classes; sgdet: every node's
            # assigned class, background included
            nodes = ~g['is_person'] if self.mode == 'sgcls' else \
                torch.ones_like(g['is_person'])
            losses['loss_object'] = self.obj_loss_weight * F.cross_entropy(
                obj_logits[nodes], g['labels'][nodes])
        return losses

    @torch.no_grad()
    def _predict(self, x, obj_logits, g, samples) -> List[dict]:
        att, spa, con = self.relation_head.predict(x)
        labels = g['labels'].clone()
        scores = g['scores'].clone()  # 1, or the person's detection score
        if obj_logits is not None:
            prob = obj_logits.softmax(-1)
            objects = ~g['is_person']
            # an object is never background nor person (sgdet keeps their
            # probability mass in the normalisation: a likely background
            # box scores low)
            best, arg = prob[objects][:, PERSON + 1:].max(-1)
            labels[objects] = arg + PERSON + 1
            labels[g['is_person']] = PERSON
            scores[objects] = best
        out = []
        node_start = 0
        for v, s in enumerate(samples):
            nodes = torch.nonzero(g['node_video'] == v).flatten()
            pairs = torch.nonzero(g['pair_video'] == v).flatten()
            out.append(dict(
                s,
                pred_boxes=g['orig_boxes'][nodes].cpu(),
                pred_box_frames=(g['frames'][nodes] -
                                 g['offsets'][v]).cpu(),
                pred_labels=labels[nodes].cpu(),
                pred_scores=scores[nodes].cpu(),
                pred_pairs=torch.stack([g['subj'][pairs], g['obj'][pairs]],
                                       1).cpu() - node_start,
                pred_attention=att[pairs].cpu(),
                pred_spatial=spa[pairs].cpu(),
                pred_contacting=con[pairs].cpu()))
            node_start += len(nodes)
        return out
