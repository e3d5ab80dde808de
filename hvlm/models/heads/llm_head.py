"""Open-ended video QA and dense captioning with a pretrained causal LM
reading the video tokens as a prefix."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from hvlm.registry import HEADS, MODELS
from hvlm.structures import SampleList, VideoFeatures
from ..language.generation import PREFIX_ATTENTION
from ..text import TextTransformerLayer
from .action_detection_head import gt_frame_labels
from .base_head import BaseHead, global_mean
from .video_memory import (step_labels, step_maxima, step_means,
                           step_times, time_features, video_memory)

TASKS = ('video_qa', 'video_captioning')
OVERFLOW = ('truncate', 'error')
PROJECTORS = ('linear', 'mlp', 'vocab', 'resampler')
SEGMENTS = ('auto', 'gt', 'pred', 'video')
VIDEO_NORMS = (None, 'batch', 'center')
STEP_TOKENS = (False, True, 'mean', 'max')
DEFAULT_PROMPTS = dict(
    video_qa='question: {question} answer:',
    video_captioning='caption from {start:.1f}s to {end:.1f}s:')
VIDEO = '<video>'  # where a prompt template puts the video tokens
DEFAULT_RESAMPLER = dict(num_queries=8, num_layers=1, num_heads=4)
DEFAULT_STEP_LOSS = dict(num_classes=0, layer=-1, loss_weight=1.)
DEFAULT_GENERATION = dict(strategy='greedy', max_new_tokens=16, num_beams=4,
                          temperature=1., top_k=0, top_p=1.,
                          length_penalty=1., use_cache=True, seed=0)


def keep_evenly(num: int, keep: int) -> Tensor:
    """Indices of ``keep`` of ``num`` tokens, evenly spread over time and
    in order (the first and the last are kept): the truncation rule for
    video tokens that do not fit the context."""
    if keep >= num:
        return torch.arange(num)
    if keep <= 1:
        return torch.zeros(max(keep, 0), dtype=torch.long)
    return torch.linspace(0, num - 1, keep).round().long()


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``scale`` backward."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad * ctx.scale, None


class RunningCenter(nn.Module):
    """Subtract each channel's mean over the tokens and divide by one scale,
    the RMS of what is left over all channels: the tokens' shared mean is
    removed, their differences brought to RMS 1, and the channels keep
    their relative scales (unlike ``BatchNorm1d``, which also brings a
    channel that barely varies to variance 1). Batch statistics in
    training, running averages (``momentum``) in evaluation."""

    def __init__(self, channels: int, momentum: float = 0.1,
                 eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer('running_mean', torch.zeros(channels))
        self.register_buffer('running_scale', torch.ones(()))

    def forward(self, x: Tensor) -> Tensor:
        """``x [N, C]``."""
        if self.training:
            mean = x.mean(0)
            scale = (x - mean).pow(2).mean().sqrt()
            with torch.no_grad():
                m = self.momentum
                self.running_mean.lerp_(mean.detach().float(), m)
                self.running_scale.lerp_(scale.detach().float(), m)
        else:
            mean, scale = self.running_mean, self.running_scale
        return (x - mean.to(x.dtype)) / (scale.to(x.dtype) + self.eps)


class Item:
    """One text to read or write: its video, prompt, target (training) and
    the video tokens it sees."""

    def __init__(self, task: str, video: int, prompt: str,
                 target: Optional[str], span=None, key=None) -> None:
        self.task, self.video, self.prompt = task, video, prompt
        self.target, self.span, self.key = target, span, key


@HEADS.register_module()
class LLMHead(BaseHead):
    """Open-ended QA and dense captioning by a pretrained causal LM (the
    LLaVA / Video-ChatGPT recipe: Liu et al. 2023, "Visual Instruction
    Tuning"; Maaz et al. 2024, "Video-ChatGPT").

    The video's final tokens (after the backbone's merging, every clip,
    with an embedding of when they happen, :func:`time_features`) go
    through a projector (``'linear'``, a two-layer ``'mlp'``, ``'vocab'`` or
    ``'resampler'``, see below) into the
    LM's embedding space and stand before the prompt::

        [left padding] [video tokens] [prompt] [answer] [end]

    The loss is the LM's cross-entropy on the answer tokens and the end
    token only (video, prompt and padding are not predicted), averaged
    over those tokens of the whole batch, all ranks together
    (:func:`global_mean`). ``predict`` generates from ``[video] [prompt]``
    (greedy, beam or sampled, with a KV cache, left-padded batches) and
    writes ``pred_qa`` (``dict(question, answer, answer_id=-1)``: the
    answer is text, which ``VideoQAMetric`` scores by normalised exact
    match) and ``pred_captions`` (``dict(text, start, end)``, for
    ``CaptionMetric``).

    A caption reads only the video tokens whose time span overlaps its
    segment (the nearest ones when none does), as ``VideoCaptioningHead``
    does. Which segments ``predict`` captions (``segments``), as that head:
    ``'gt'`` the ground-truth caption times, ``'pred'`` the detection
    head's ``pred_segments`` (the ``max_pred_segments`` best scored; put
    the detection head first in a MultiTaskHead), ``'video'`` the whole
    sampled span, ``'auto'`` the first of these that the sample has.

    A sequence longer than the LM's context: with
    ``overflow='truncate'`` the video tokens are cut to what fits, keeping
    tokens evenly spread over time (:func:`keep_evenly`); with ``'error'``
    it fails naming the lengths. ``max_video_tokens`` caps them by the same
    rule in any case.

    The LM's LoRA (``llm.lora``) uses each video's metadata ``domain``.
    ``freeze_llm_epochs``: ``LLMStageHook`` keeps the LoRA factors frozen
    for that many epochs (the projector learns first), then trains them.
    They are trainable when the model is built, so that the optimizer
    (built before the hooks run) holds them.

    Args:
        in_channels (int): Width of the video tokens.
        llm (dict): The LM (``MODELS``), e.g. ``dict(type='HFCausalLM',
            pretrained='work_dirs/demo_lm', lora=dict(...))``.
        tasks (Sequence[str]): Of ``'video_qa'`` and ``'video_captioning'``.
        projector (str): ``'linear'``, ``'mlp'`` or ``'vocab'``: the
            ``'mlp'`` followed by a soft choice of words, ``softmax(h E^T /
            (s sqrt(C))) E`` with ``E`` the LM's (frozen) input embeddings
            and ``s`` their root mean square, so that every video token is
            a mixture of word embeddings, on their scale: an LM that reads
            words reads them (the free projectors of a small LM collapse to
            one constant prefix, see docs/LANGUAGE_MODELS.md).
            ``'resampler'``: each clip's tokens are read by
            ``num_queries`` learned queries (layers of self-attention among
            the queries, cross-attention to the clip's tokens with the
            ``log(size)`` bias of merged tokens, and an MLP: BLIP-2's
            Q-Former layer, Li et al. 2023; per clip, so that the LM still
            reads the video in time order), then the ``'mlp'``: the LM sees
            ``num_queries`` tokens per clip, spanning the clip's time.
        video_norm (str, optional): ``'batch'``: each channel of the
            encoder's tokens standardised over the training tokens
            (``nn.BatchNorm1d``: batch statistics in training, running ones
            in evaluation) before the time embedding and the projector. An
            encoder's tokens can share one large mean token and differ from
            video to video by little (an untrained hierarchical encoder:
            the mean token 0.95 of the tokens' RMS 1.0, the videos' pooled
            tokens 0.04 apart): a classifier head reads such differences,
            but an LM behind a projector sees an almost constant prefix and
            learns to answer from the text alone
            (docs/LANGUAGE_MODELS.md, "Learns, measured"). ``'center'``:
            the mean removed per channel and one scale for all channels
            (``RunningCenter``). ``None``: the tokens as they are.
        video_attention (str): How the video tokens attend among
            themselves in the LM: ``'causal'`` as text does (each reads the
            tokens before it), ``'bidirectional'`` every video token reads
            every other (PaliGemma's prefix-LM, Beyer et al. 2024), or
            ``'self'`` each reads only itself, so that the prompt and the
            answer read every video token as the encoder left it (as the
            fixed heads' cross-attention does). Text tokens attend
            causally in every case (:func:`prefix_attention_mask`).
        step_tokens (bool | str): Add one token per time step of the
            sampled video (``num_clips * T0``) after the video tokens,
            with its time embedding, through the same projector: a handful
            of tokens in time order from which the LM can read the video's
            course. ``True`` or ``'mean'``: the mean of the (normalised)
            tokens that cover the step (:func:`step_means`; Video-ChatGPT's
            temporal features, frame features pooled over space, Maaz et
            al. 2024; on the demo data level with the MLP on every token
            alone, docs/LANGUAGE_MODELS.md). ``'max'``: their maximum over
            the step's tubelets (:func:`step_maxima`), the frame feature
            the action head reads, which keeps a small object's action. A
            caption's segment takes the step tokens it overlaps too;
            cutting to fit the context keeps them whole. Not with
            ``projector='resampler'``.
        step_loss (dict, optional): Supervise the LM's states at the step
            tokens with the video's frame labels (``gt_frame_labels``), as
            temporal action localisation supervises each time step with its
            class and where actions start (BSN, Lin et al. 2018): linear
            layers on the states of layer ``layer`` (Hugging Face's
            numbering: 0 the input embeddings, ``-1`` the last layer)
            predict whether an action starts in the step
            (:func:`step_labels`; binary cross-entropy, ``loss_step_start``)
            and, with ``num_classes > 0``, the class of each of its frames
            (cross-entropy, ``loss_step_cls``), both weighted by
            ``loss_weight`` (``DEFAULT_STEP_LOSS``). The answer tokens read
            the step tokens' states of the layers before the last: there
            the starts of the actions are what an answer about their number
            or order needs. Each video's steps count once (from its first
            text that holds them); videos without frame labels add nothing.
            Needs ``step_tokens``.
        resampler (dict, optional): ``num_queries``, ``num_layers``,
            ``num_heads`` of the ``'resampler'`` projector (defaults
            ``DEFAULT_RESAMPLER``).
        prompts (dict, optional): ``task -> template``; QA formats
            ``{question}``, captioning ``{start}`` and ``{end}`` (seconds).
            The video tokens go before the prompt, or where the template
            says ``<video>`` (once at most), e.g. ``'question: {question}
            <video> answer:'``: the video tokens then read the question
            (the LM is causal), as InstructBLIP's instruction-aware
            queries do (Dai et al. 2023).
        answer_prefix (str): Put before every answer (``' '``: answers are
            new words after the prompt's colon).
        max_video_tokens (int, optional): Cap on the video tokens per text.
        overflow (str): ``'truncate'`` or ``'error'``, see above.
        time_freqs (int): Frequencies of the time embedding; 0 turns it off.
        generation (dict, optional): Overrides of
            ``DEFAULT_GENERATION`` (``strategy``, ``max_new_tokens``,
            ``num_beams``, ``temperature``, ``top_k``, ``top_p``,
            ``length_penalty``, ``use_cache``, ``seed``).
        segments (str): Where ``predict`` takes caption segments from.
        max_pred_segments (int): Predicted segments captioned per video.
        freeze_llm_epochs (int): See above.
        loss_weight (float): Multiplier of the losses.
        encoder_grad_scale (float): Multiplier of the gradient the head
            sends back into the encoder's tokens (the head's own parameters
            learn at ``loss_weight``): 1 as is, 0 the language losses do
            not train the encoder.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 llm: dict,
                 tasks: Sequence[str] = TASKS,
                 projector: str = 'mlp',
                 resampler: Optional[dict] = None,
                 video_norm: Optional[str] = None,
                 video_attention: str = 'causal',
                 step_tokens=False,
                 step_loss: Optional[dict] = None,
                 prompts: Optional[Dict[str, str]] = None,
                 answer_prefix: str = ' ',
                 max_video_tokens: Optional[int] = None,
                 overflow: str = 'truncate',
                 time_freqs: int = 4,
                 generation: Optional[dict] = None,
                 segments: str = 'auto',
                 max_pred_segments: int = 5,
                 freeze_llm_epochs: int = 0,
                 loss_weight: float = 1.0,
                 encoder_grad_scale: float = 1.0,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        tasks = (tasks, ) if isinstance(tasks, str) else tuple(tasks)
        unknown = [t for t in tasks if t not in TASKS]
        if not tasks or unknown:
            raise ValueError(f'tasks={tasks} must name some of {TASKS}')
        if overflow not in OVERFLOW:
            raise ValueError(f'overflow={overflow!r} must be one of '
                             f'{OVERFLOW}')
        if projector not in PROJECTORS:
            raise ValueError(f'projector={projector!r} must be one of '
                             f'{PROJECTORS}')
        if video_norm not in VIDEO_NORMS:
            raise ValueError(f'video_norm={video_norm!r} must be one of '
                             f'{VIDEO_NORMS}')
        if video_attention not in PREFIX_ATTENTION:
            raise ValueError(f'video_attention={video_attention!r} must be '
                             f'one of {PREFIX_ATTENTION}')
        self.video_attention = video_attention
        if step_tokens and projector == 'resampler':
            raise ValueError('step_tokens=True reads every token of a step; '
                             "projector='resampler' already reads each "
                             'clip into its own tokens: use one of them')
        if step_tokens not in STEP_TOKENS:
            raise ValueError(f'step_tokens={step_tokens!r} must be one of '
                             f'{STEP_TOKENS}')
        self.step_reduce = 'mean' if step_tokens is True else \
            step_tokens or None
        self.step_tokens = self.step_reduce is not None
        if segments not in SEGMENTS:
            raise ValueError(f'segments={segments!r} must be one of '
                             f'{SEGMENTS}')
        if max_pred_segments < 1:
            raise ValueError(f'max_pred_segments={max_pred_segments} must '
                             'be a positive integer')
        generation = dict(generation or {})
        bad = sorted(set(generation) - set(DEFAULT_GENERATION))
        if bad:
            raise ValueError(f'generation has unknown keys {bad}; known: '
                             f'{sorted(DEFAULT_GENERATION)}')
        self.generation = dict(DEFAULT_GENERATION, **generation)
        self.prompts = dict(DEFAULT_PROMPTS, **(prompts or {}))
        for task, template in self.prompts.items():
            if template.count(VIDEO) > 1:
                raise ValueError(f'prompts[{task!r}]={template!r} has '
                                 f'{VIDEO} more than once')
        self.tasks = tasks
        self.segments = segments
        self.max_pred_segments = int(max_pred_segments)
        self.answer_prefix = answer_prefix
        self.max_video_tokens = max_video_tokens
        self.overflow = overflow
        self.time_freqs = time_freqs
        self.freeze_llm_epochs = int(freeze_llm_epochs)
        self.projector_type = projector
        self.loss_weight = loss_weight
        if not 0 <= encoder_grad_scale:
            raise ValueError(f'encoder_grad_scale={encoder_grad_scale} '
                             'must be >= 0')
        self.encoder_grad_scale = float(encoder_grad_scale)
        self.llm = MODELS.build(llm)
        dims = self.llm.embed_dims
        self.step_loss = self._check_step_loss(step_loss)
        if self.step_loss is not None:
            classes = self.step_loss['num_classes']
            self.step_cls = nn.Linear(dims, classes) if classes else None
            self.step_start = nn.Linear(dims, 1)
        self.projector = nn.Linear(in_channels, dims) \
            if projector == 'linear' else nn.Sequential(
                nn.Linear(in_channels, dims), nn.GELU(), nn.Linear(
                    dims, dims))
        self.time_embed = nn.Linear(2 * time_freqs, in_channels) \
            if time_freqs else None
        self.video_norm = None if video_norm is None else \
            nn.BatchNorm1d(in_channels) if video_norm == 'batch' else \
            RunningCenter(in_channels)
        if resampler is not None and projector != 'resampler':
            raise ValueError(f'resampler={resampler} is given but '
                             f"projector={projector!r}; set "
                             "projector='resampler' to use it")
        if projector == 'resampler':
            resampler = dict(DEFAULT_RESAMPLER, **(resampler or {}))
            bad = sorted(set(resampler) - set(DEFAULT_RESAMPLER))
            if bad:
                raise ValueError(f'resampler has unknown keys {bad}; '
                                 f'known: {sorted(DEFAULT_RESAMPLER)}')
            for key, value in resampler.items():
                if not isinstance(value, int) or value < 1:
                    raise ValueError(f'resampler.{key}={value!r} must be a '
                                     'positive integer')
            self.queries = nn.Parameter(
                torch.zeros(resampler['num_queries'], in_channels))
            nn.init.trunc_normal_(self.queries, std=0.02)
            self.resampler = nn.ModuleList(
                TextTransformerLayer(in_channels, resampler['num_heads'])
                for _ in range(resampler['num_layers']))
            self.resampler_norm = nn.LayerNorm(in_channels)

    def _check_step_loss(self, cfg: Optional[dict]) -> Optional[dict]:
        if cfg is None:
            return None
        if not self.step_tokens:
            raise ValueError(f'step_loss={cfg} supervises the step tokens; '
                             "set step_tokens ('max' or 'mean') as well")
        bad = sorted(set(cfg) - set(DEFAULT_STEP_LOSS))
        if bad:
            raise ValueError(f'step_loss has unknown keys {bad}; known: '
                             f'{sorted(DEFAULT_STEP_LOSS)}')
        cfg = dict(DEFAULT_STEP_LOSS, **cfg)
        layers = self.llm.num_layers
        if not isinstance(cfg['layer'], int) or not \
                -layers <= cfg['layer'] <= layers:
            raise ValueError(f"step_loss.layer={cfg['layer']!r} must be an "
                             f'integer in [-{layers}, {layers}] ('
                             f'{self.llm.pretrained} has {layers} layers)')
        if not isinstance(cfg['num_classes'], int) or cfg['num_classes'] < 0:
            raise ValueError(f"step_loss.num_classes={cfg['num_classes']!r}"
                             ' must be a non-negative integer')
        return cfg

    def set_llm_trainable(self, flag: bool) -> None:
        """Switch what the LM trains on or off (``LLMStageHook``): its
        LoRA factors, and its base weights with ``llm.freeze=False``."""
        self.llm.set_trainable(flag)

    # ------------------------------------------------------------------
    # video tokens
    # ------------------------------------------------------------------
    def forward(self, feats: VideoFeatures) -> Tensor:
        """Video tokens in the LM's embedding space, ``[V, M, C_lm]``
        (``M`` grows by ``num_clips * T0`` with ``step_tokens``)."""
        return self._video(feats)[0]

    def _video(self, feats: VideoFeatures) -> Tuple[Tensor, Tensor]:
        memory, bias, steps = video_memory(feats)  # [V, M, C], [V, M, 2]
        if self.encoder_grad_scale != 1 and memory.requires_grad:
            memory = _ScaleGrad.apply(memory, self.encoder_grad_scale)
        if self.video_norm is not None:
            memory = self.video_norm(memory.flatten(0, 1)).view_as(memory)
        num_steps = feats.num_clips * feats.grid[0]
        if self.step_tokens:
            extra, extra_steps = step_means(
                memory, bias, steps, num_steps) if self.step_reduce == \
                'mean' else step_maxima(memory, feats)
            memory = torch.cat([memory, extra], 1)
            steps = torch.cat([steps, extra_steps], 1)
        if self.time_embed is not None:
            times = time_features(steps, num_steps, self.time_freqs)
            memory = memory + self.time_embed(times.to(memory.dtype))
        if self.projector_type == 'resampler':
            memory, steps = self._resample(memory, bias, steps,
                                           feats.num_clips)
        video = self.projector(memory)  # [V, M, C_lm]
        if self.projector_type == 'vocab':
            words = self.llm.model.get_input_embeddings().weight  # [W, C]
            words = words.to(video.dtype)
            scale = words.pow(2).mean().sqrt() * words.shape[1]**0.5
            video = (video @ words.t() / scale).softmax(-1) @ words
        return video, steps

    def _resample(self, memory: Tensor, bias: Tensor, steps: Tensor,
                  num_clips: int) -> Tuple[Tensor, Tensor]:
        """``num_queries`` tokens per clip read from its tokens, ``[V,
        nc*K, C]``, and their steps ``[V, nc*K, 2]`` (the clip's first and
        last step)."""
        V, M, C = memory.shape
        N = M // num_clips
        K = self.queries.shape[0]
        clips = memory.reshape(V * num_clips, N, C)
        x = self.queries.to(memory.dtype).expand(V * num_clips, K, C)
        for layer in self.resampler:
            x = layer(x, memory=clips,
                      memory_bias=bias.reshape(V * num_clips, N))
        x = self.resampler_norm(x).reshape(V, num_clips * K, C)
        steps = steps.reshape(V, num_clips, N, 2)
        span = torch.stack([steps[..., 0].amin(-1), steps[..., 1].amax(-1)],
                           -1)  # [V, nc, 2]
        return x, span.repeat_interleave(K, dim=1)

    def _segment_tokens(self, feats: VideoFeatures, steps: Tensor,
                        sample, video: int, start: float,
                        end: float) -> Tensor:
        """Indices of the tokens of ``video`` whose time span overlaps
        ``[start, end]``, or of the nearest ones."""
        if 'frame_times' not in sample.metainfo:
            raise ValueError(
                f'video {sample.metainfo.get("video_id", "?")!r} has no '
                'frame_times in its metainfo (SampleFrames adds them); '
                'captions are placed in time with them')
        times = step_times(feats, sample.metainfo['frame_times']).to(
            steps.device)  # [nc*T0, 2]
        span = torch.stack([times[steps[video, :, 0], 0],
                            times[steps[video, :, 1], 1]], -1)  # [M, 2]
        gap = torch.maximum(span[:, 0] - end,
                            start - span[:, 1]).clamp_min(0)  # [M]
        return (gap <= gap.min()).nonzero()[:, 0]

    # ------------------------------------------------------------------
    # what to read and write
    # ------------------------------------------------------------------
    def _items(self, data_samples: SampleList, training: bool) -> List[Item]:
        items = []
        for v, sample in enumerate(data_samples):
            if 'video_qa' in self.tasks:
                pairs = sample.get('gt_qa', [])
                questions = list(sample.questions) if (
                    not training and 'questions' in sample) else [
                        qa['question'] for qa in pairs]
                answers = [qa.get('answer') for qa in pairs] \
                    if training else [None] * len(questions)
                for q, a in zip(questions, answers):
                    if training and not a:
                        continue
                    items.append(Item('video_qa', v, self.prompts[
                        'video_qa'].format(question=q), a, key=q))
            if 'video_captioning' in self.tasks:
                for caption in self._segments(sample, training):
                    start, end, text = caption
                    items.append(Item(
                        'video_captioning', v,
                        self.prompts['video_captioning'].format(
                            start=start, end=end), text, span=(start, end)))
        return items

    def _segments(self, sample, training: bool):
        """``(start, end, text)`` of the segments to caption: in training
        the ground-truth captions; in ``predict`` as ``segments`` says
        (text ``None``)."""
        if training:
            return [(float(c['start']), float(c['end']), c.get('text'))
                    for c in sample.get('gt_captions', [])]
        sources = (('gt', 'pred', 'video')
                   if self.segments == 'auto' else (self.segments, ))
        for source in sources:
            if source == 'gt' and 'gt_captions' in sample:
                return [(float(c['start']), float(c['end']), None)
                        for c in sample.gt_captions]
            if source == 'pred' and 'pred_segments' in sample:
                order = torch.as_tensor(
                    sample.pred_segment_scores).argsort(descending=True)
                chosen = torch.as_tensor(sample.pred_segments)[
                    order[:self.max_pred_segments]]  # [S, 2]
                return [(float(b), float(e), None)
                        for b, e in chosen.tolist()]
            if source == 'video':
                times = sample.metainfo.get('frame_times')
                if times is None:
                    return []
                times = torch.as_tensor(times, dtype=torch.float64)
                return [(float(times.min()), float(times.max()), None)]
        return []

    def _sequences(self, feats: VideoFeatures, data_samples: SampleList,
                   items: List[Item], new_tokens: int
                   ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Left-padded ``embeds [S, L, C]``, ``mask [S, L]``, ``labels
        [S, L]`` (the token each position must predict next, ``-100`` where
        nothing is predicted: video, prompt and padding), ``is_video
        [S, L]`` (the video tokens' positions) and ``step_at [S, L]`` (the
        time step of each step token, ``-1`` elsewhere).

        ``new_tokens`` is room left for generation (0 in training, where
        the target is part of the sequence)."""
        video, steps = self._video(feats)  # [V, M, C], [V, M, 2]
        # step tokens (the last nc*T0) are kept whole when cutting to fit
        first_step = video.shape[1] - (feats.num_clips * feats.grid[0]
                                       if self.step_tokens else 0)
        lm = self.llm
        rows = []
        for item in items:
            before, _, after = item.prompt.rpartition(VIDEO)
            before = lm.encode(before) if before else []
            prompt = lm.encode(after)
            target = [] if item.target is None else lm.encode(
                self.answer_prefix + item.target) + [lm.eos_token_id]
            if item.span is None:
                index = torch.arange(video.shape[1], device=video.device)
            else:
                index = self._segment_tokens(feats, steps,
                                             data_samples[item.video],
                                             item.video, *item.span)
            kept = index[index >= first_step]
            index = index[index < first_step]
            index = index[keep_evenly(len(index), self._room(
                len(index),
                len(before) + len(prompt) + len(target) + new_tokens, item,
                len(kept)))]
            rows.append((before, video[item.video, torch.cat([index, kept])],
                         prompt, target, kept - first_step))
        L = max(len(b) + v.shape[0] + len(p) + len(t)
                for b, v, p, t, _ in rows)
        C = video.shape[-1]
        embeds = video.new_zeros(len(rows), L, C)
        mask = torch.zeros(len(rows), L, dtype=torch.long,
                           device=video.device)
        labels = torch.full((len(rows), L), -100, dtype=torch.long,
                            device=video.device)
        is_video = torch.zeros(len(rows), L, dtype=torch.bool,
                               device=video.device)
        step_at = torch.full((len(rows), L), -1, dtype=torch.long,
                             device=video.device)
        for r, (before, vid, prompt, target, kept) in enumerate(rows):
            ids = torch.tensor(before + prompt + target, dtype=torch.long,
                               device=video.device)
            text = lm.embed(ids).to(video.dtype)  # [B+P+T, C]
            seq = torch.cat([text[:len(before)], vid, text[len(before):]])
            n = seq.shape[0]
            embeds[r, L - n:] = seq
            mask[r, L - n:] = 1
            first = L - n + len(before)
            is_video[r, first:first + vid.shape[0]] = True
            end = first + vid.shape[0]
            step_at[r, end - len(kept):end] = kept
            if target:
                # position i predicts token i+1: the last prompt token
                # predicts the first answer token, ..., the last answer
                # token predicts the end token
                labels[r, L - len(target) - 1:L - 1] = ids[-len(target):]
        return embeds, mask, labels, is_video, step_at

    def _room(self, num_video: int, num_text: int, item: Item,
              num_steps: int = 0) -> int:
        """How many of the ``num_video`` video tokens the sequence keeps
        beside ``num_steps`` step tokens, which it keeps whole."""
        keep = num_video if self.max_video_tokens is None else min(
            num_video, self.max_video_tokens)
        context = self.llm.context_length
        if keep + num_steps + num_text <= context:
            return keep
        steps = f' + {num_steps} step tokens' if num_steps else ''
        what = (f'{keep} video tokens{steps} + {num_text} text tokens '
                f'(prompt {item.prompt!r}, answer and room to generate) '
                f'exceed the context of {self.llm.pretrained} ({context} '
                'tokens)')
        num_text += num_steps
        if self.overflow == 'error' or num_text >= context:
            raise ValueError(
                f'{what}; set max_video_tokens, a shorter prompt, or '
                "overflow='truncate' to keep evenly spaced video tokens"
                if self.overflow == 'error' else
                f'{what}, even with no video token')
        return context - num_text

    # ------------------------------------------------------------------
    # loss and prediction
    # ------------------------------------------------------------------
    def _domains(self, items: List[Item], data_samples: SampleList):
        return self.llm.domain_ids(
            [data_samples[i.video].get('domain') for i in items])

    def loss(self, feats: VideoFeatures,
             data_samples: SampleList) -> Dict[str, Tensor]:
        items = self._items(data_samples, training=True)
        zero = feats.tokens.sum() * 0. + sum(
            p.sum() for p in self.parameters() if p.requires_grad) * 0.
        losses = {}
        if items:
            embeds, mask, labels, is_video, step_at = self._sequences(
                feats, data_samples, items, 0)
            ids = self._domains(items, data_samples)
            out = self.llm(
                embeds, mask, (mask.cumsum(-1) - 1).clamp_min(0),
                domain_ids=None if ids is None else ids.to(embeds.device),
                prefix=is_video, prefix_attention=self.video_attention,
                output_hidden_states=self.step_loss is not None)
            logits = out[0]
            nll = nn.functional.cross_entropy(
                logits.float().flatten(0, 1), labels.flatten(),
                ignore_index=-100, reduction='none').view_as(labels)
        for task, key in (('video_qa', 'loss_answer'),
                          ('video_captioning', 'loss_caption')):
            if task not in self.tasks:
                continue
            rows = [r for r, item in enumerate(items) if item.task == task]
            if rows:
                total = nll[rows].sum()
                count = (labels[rows] != -100).sum()
                # collective: every rank calls it, with or without items
                losses[key] = (global_mean(total, count) + zero) * \
                    self.loss_weight
            else:
                losses[key] = global_mean(zero, 0) * self.loss_weight
        if self.step_loss is not None:
            states = out[2][self.step_loss['layer']] if items else None
            losses.update(self._step_losses(
                feats, data_samples, items, states,
                step_at if items else None, zero))
        return losses

    def _step_losses(self, feats: VideoFeatures, data_samples: SampleList,
                     items: List[Item], states: Optional[Tensor],
                     step_at: Optional[Tensor],
                     zero: Tensor) -> Dict[str, Tensor]:
        """``loss_step_start`` (and ``loss_step_cls``) of ``step_loss``
        on the LM's ``states [S, L, C]`` at the step tokens."""
        weight = self.step_loss['loss_weight'] * self.loss_weight
        classes = self.step_loss['num_classes']
        labels = gt_frame_labels(
            data_samples, feats.num_clips * feats.num_frames, zero.device,
            classes or None, 'step_loss.num_classes')  # [V, nc*F]
        frame_labels, starts = step_labels(feats, labels)
        annotated = (labels >= 0).any(1)  # [V]
        # each (video, step) once, from the first text that holds it
        rows, where, videos, steps, seen = [], [], [], [], set()
        for r, item in enumerate(items):
            if not bool(annotated[item.video]):
                continue
            at = (step_at[r] >= 0).nonzero()[:, 0]
            for p, step in zip(at.tolist(), step_at[r, at].tolist()):
                key = (item.video, step)
                if key not in seen:
                    seen.add(key)
                    rows.append(r)
                    where.append(p)
                    videos.append(key[0])
                    steps.append(key[1])
        losses = {}
        if rows:
            h = states[rows, where]  # [N, C]
            start = self.step_start(h.to(self.step_start.weight.dtype))
            total = nn.functional.binary_cross_entropy_with_logits(
                start[:, 0].float(), starts[videos, steps].float(),
                reduction='sum')
            losses['loss_step_start'] = global_mean(
                total + zero, len(rows)) * weight
        else:
            losses['loss_step_start'] = global_mean(zero, 0) * weight
        if self.step_cls is not None:
            if rows:
                target = frame_labels[videos, steps]  # [N, tp]
                logits = self.step_cls(h.to(self.step_cls.weight.dtype))
                total = nn.functional.cross_entropy(
                    logits.float()[:, None].expand(
                        -1, target.shape[1], -1).flatten(0, 1),
                    target.flatten(), ignore_index=-1, reduction='sum')
                losses['loss_step_cls'] = global_mean(
                    total + zero, (target >= 0).sum()) * weight
            else:
                losses['loss_step_cls'] = global_mean(zero, 0) * weight
        return losses

    @torch.no_grad()
    def generate(self, feats: VideoFeatures, data_samples: SampleList,
                 items: List[Item]) -> List[str]:
        """The text the LM writes for each item."""
        cfg = self.generation
        embeds, mask, _, is_video, _ = self._sequences(
            feats, data_samples, items, cfg['max_new_tokens'])
        ids = self._domains(items, data_samples)
        out = self.llm.generate(
            embeds, mask, cfg['max_new_tokens'], strategy=cfg['strategy'],
            num_beams=cfg['num_beams'], temperature=cfg['temperature'],
            top_k=cfg['top_k'], top_p=cfg['top_p'],
            length_penalty=cfg['length_penalty'], use_cache=cfg['use_cache'],
            generator=torch.Generator().manual_seed(cfg['seed']),
            domain_ids=None if ids is None else ids.to(embeds.device),
            prefix=is_video, prefix_attention=self.video_attention)
        return [self.llm.decode(row) for row in out]

    def predict(self, feats: VideoFeatures, data_samples: SampleList,
                tasks: Optional[Sequence[str]] = None) -> SampleList:
        """Write ``pred_qa`` and ``pred_captions`` (see the class
        docstring); ``tasks``: only these of the head's tasks (default:
        all), e.g. ``('video_qa', )`` to answer without captioning."""
        tasks = self.tasks if tasks is None else tuple(tasks)
        unknown = [t for t in tasks if t not in self.tasks]
        if unknown:
            raise ValueError(f'tasks {unknown} are not among the tasks of '
                             f'this LLMHead, {self.tasks}')
        items = [i for i in self._items(data_samples, training=False)
                 if i.task in tasks]
        texts = self.generate(feats, data_samples, items) if items else []
        for v, sample in enumerate(data_samples):
            mine = [(i, t) for i, t in zip(items, texts) if i.video == v]
            if 'video_qa' in tasks:
                sample.pred_qa = [
                    dict(question=i.key, answer=t, answer_id=-1)
                    for i, t in mine if i.task == 'video_qa'
                ]
            if 'video_captioning' in tasks:
                sample.pred_captions = [
                    dict(text=t, start=i.span[0], end=i.span[1])
                    for i, t in mine if i.task == 'video_captioning'
                ]
        return data_samples
