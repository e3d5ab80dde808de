"""Run a trained model on a video file, the way ``tools/inference.py`` does.

:func:`init_model` builds a model from its config and checkpoint;
:func:`inference_video` streams one video through it clip by clip and
returns plain-Python results (action segments, per-frame actionness, an
answer, dense captions) that ``json.dumps`` can write as they are.
"""
import contextlib
import copy
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils import ProgressBar, import_modules_from_strings
from torch import Tensor

from hvlm.datasets.transforms import SampleFrames
from hvlm.models.attention.cross_memory_attention import CrossMemoryAttention
from hvlm.structures import VideoFeatures
from hvlm.models.heads import (ActionDetectionHead, VideoCaptioningHead,
                               VideoQAHead, decode_segments, step_times,
                               video_memory)
from hvlm.registry import MODELS, TRANSFORMS
from hvlm.structures import VideoDataSample
from hvlm.utils import register_all_modules
from hvlm.utils.checkpoint_fit import load_fitting_weights
from .streaming import VideoTokenBank, clip_windows

__all__ = ['TASKS', 'init_model', 'inference_video']

# What inference_video can do, and the head each task needs.
TASKS = ('action_detection', 'qa', 'captioning')
_HEAD_TYPES = dict(
    action_detection=ActionDetectionHead,
    qa=VideoQAHead,
    captioning=VideoCaptioningHead)


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a model from a config and load its checkpoint for inference.

    The weights are read with hvlm's safe loader (``weights_only=True``,
    see :mod:`hvlm.utils.checkpoint`) and must fit the model exactly. The
    tokenizer of the text heads is part of the state dict, so it comes
    back with the weights; the checkpoint's ``meta['dataset_meta']`` (the
    class, answer and word vocabularies of the training data) becomes
    ``model.dataset_meta``, and the config ``model.cfg`` (its test
    pipeline is what :func:`inference_video` runs).

    Args:
        config (str | Path | Config): Config file or object.
        checkpoint (str, optional): Checkpoint file; ``None`` keeps the
            freshly built weights (``dataset_meta`` is then ``None``).
        device (str): Where the model goes, e.g. ``'cpu'`` or ``'cuda:0'``.
        cfg_options (dict, optional): Overrides merged into the config,
            as ``--cfg-options`` does (``{'model.backbone.depths': ...}``).

    Returns:
        nn.Module: The model in eval mode.

    Raises:
        CheckpointLoadError: The checkpoint is missing, unreadable, unsafe,
            or its weights do not fit the model; the message names it.
    """
    if isinstance(config, (str, Path)):
        config = Config.fromfile(str(config))
    elif isinstance(config, Config):
        config = copy.deepcopy(config)
    else:
        raise TypeError('config must be a file path or a Config, got '
                        f'{type(config).__name__}')
    if cfg_options:
        config.merge_from_dict(cfg_options)
    if 'model' not in config:
        raise ValueError(f'config {config.filename} has no "model" key')
    register_all_modules(init_default_scope=False)
    if config.get('custom_imports'):
        import_modules_from_strings(**config.custom_imports)
    with DefaultScope.overwrite_default_scope(
            config.get('default_scope', 'hvlm')):
        model = MODELS.build(config.model)
    model.cfg = config
    model.dataset_meta = None
    if checkpoint is not None:
        ckpt = _load_weights(model, str(checkpoint), config)
        meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
        model.dataset_meta = (meta or {}).get('dataset_meta')
    return model.to(device).eval()


def _load_weights(model: nn.Module, checkpoint: str, config: Config) -> dict:
    ckpt = CheckpointLoader.load_checkpoint(
        checkpoint, map_location='cpu', logger='silent')
    load_fitting_weights(
        model, ckpt, checkpoint,
        what=f'the model of config {config.filename}')
    return ckpt


def inference_video(model: nn.Module,
                    video: Union[str, Path],
                    task: str = 'all',
                    question: Optional[str] = None,
                    memory_tokens: int = 256,
                    progress: bool = True) -> Dict:
    """Run ``model`` on a whole video, one clip at a time.

    The video is opened once with the first steps of the config's test
    pipeline (``DecordInit``) and cut into windows that cover it
    (:func:`clip_windows`, from the pipeline's ``SampleFrames`` clip length
    and interval). Each window is sampled by that ``SampleFrames``, decoded
    and preprocessed by the rest of the test pipeline, encoded, and
    dropped: only bounded state lives on between clips.

    - Action detection keeps each clip's per-frame class scores and
      actionness (what ``ActionDetectionHead.predict`` writes; a few
      numbers per decoded frame) and, at the end, decodes segments over the
      whole video with the head's own thresholds and NMS. Segment ends are
      clipped to the video's duration.
    - QA and captioning read the video's tokens from a
      :class:`VideoTokenBank` of at most ``memory_tokens`` entries, merged
      by similarity as clips arrive, which the heads' own ``predict`` read
      as if it were one clip (:func:`_bank_features`). The captioning head
      is handed the detected segments as ``pred_segments`` and captions
      them as in the test loop (its ``segments`` setting; ``'auto'``: the
      ``max_pred_segments`` best), or the whole video when nothing was
      detected.
    - A backbone with ``CrossMemoryAttention`` carries its bank from clip
      to clip of the video (``carry_memory`` is switched on for the call
      and the banks are reset before and after).

    A one-clip video gives exactly what the model's ``test_step`` gives on
    that clip through the test dataloader.

    Args:
        model (nn.Module): From :func:`init_model` (needs ``model.cfg``).
        video (str | Path): Any file decord reads.
        task (str): One of :data:`TASKS` or ``'all'``: every task the model
            has a head for (QA only when ``question`` is given).
        question (str, optional): The question for ``'qa'``.
        memory_tokens (int): Bound on the token bank of QA and captioning.
        progress (bool): Show a progress bar over the clips on stderr.

    Returns:
        dict: ``video``, ``duration`` (s), ``fps``, ``num_frames``,
        ``num_clips``, ``tasks``; per task run, ``action_detection``
        (``segments``: ``start``, ``end`` (s), ``label``, ``label_id``,
        ``score``, best first; ``frames``: ``time``, ``actionness``,
        ``label``, ``score`` per decoded frame), ``qa`` (``question``,
        ``answer``, ``answer_id``, ``score``) and ``captioning``
        (``captions``: ``start``, ``end``, ``text``); and ``memory``: the
        state kept between clips (``bank_tokens``, ``cross_memory_tokens``,
        ``state_bytes`` at the end and ``peak_state_bytes``).

    Raises:
        VideoReadError: The video is missing, unreadable or shorter than
            one clip; the message names the file.
        ValueError: An unknown task, a task the model has no head for, or
            ``'qa'`` without a question.
    """
    cfg = getattr(model, 'cfg', None)
    if cfg is None:
        raise ValueError('model has no .cfg (its config): build it with '
                         'hvlm.apis.init_model(config, checkpoint)')
    heads = _find_heads(model)
    tasks = _resolve_tasks(task, question, heads, cfg)
    if 'qa' in tasks:
        heads['qa'].require_tokenizer()
    if 'captioning' in tasks:
        heads['captioning'].require_tokenizer()
    detector = heads.get('action_detection') if (
        'action_detection' in tasks or 'captioning' in tasks) else None
    bank = VideoTokenBank(memory_tokens) if {'qa', 'captioning'} & set(
        tasks) else None
    opening, sampler, per_clip = _split_pipeline(cfg)
    # one clip per window, placed by the config's own sampling rules
    sampler = SampleFrames(
        sampler.clip_len, sampler.frame_interval, num_clips=1,
        test_mode=True)

    results = dict(filename=str(video), video_id=Path(video).stem, tasks=())
    for transform in opening:
        results = transform(results)
    total, fps = int(results['total_frames']), float(results['avg_fps'])
    duration = total / fps
    windows = clip_windows(total, sampler.clip_len, sampler.frame_interval)

    scores: List[Tensor] = []  # per clip [F_c, K]
    actionness: List[Tensor] = []  # per clip [F_c]
    times: List[Tensor] = []  # per clip [F_c]
    step_starts: List[Tensor] = []  # per clip [T0], seconds
    last_frame, peak = -1, 0
    bar = ProgressBar(len(windows), file=sys.stderr) if progress else None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _carried_memory(model) as attentions:
            for window in windows:
                feats, sample = _encode_clip(model, results, window, sampler,
                                             per_clip)
                inds = torch.as_tensor(sample.metainfo['frame_inds'])
                new = inds > last_frame  # the tail window overlaps
                last_frame = int(inds.max())
                times.append(
                    torch.as_tensor(sample.metainfo['frame_times'])[new])
                if detector is not None:
                    detector.predict(feats, [sample])
                    scores.append(sample.pred_frame_scores[new].float().cpu())
                    actionness.append(
                        sample.pred_actionness[new].float().cpu())
                if bank is not None:
                    tokens, _, steps = video_memory(feats)  # [1, N, *]
                    offset = sum(len(t) for t in step_starts)
                    bank.add(tokens[0], feats.size[0], steps[0] + offset)
                    spans = step_times(feats, sample.metainfo['frame_times'])
                    step_starts.append(spans[:, 0])  # [T0]
                peak = max(peak, _state_bytes(bank, attentions))
                if bar is not None:
                    bar.update()
            memory = dict(
                budget_tokens=None if bank is None else bank.max_tokens,
                bank_tokens=0 if bank is None else len(bank),
                cross_memory_tokens=sum(
                    a.memory_bank[0].shape[1] for a in attentions
                    if a.memory_bank is not None),
                state_bytes=_state_bytes(bank, attentions),
                peak_state_bytes=peak)
            output = dict(
                video=str(video), duration=duration, fps=fps,
                num_frames=total, num_clips=len(windows), tasks=list(tasks))
            detected = None
            if detector is not None:
                detected = _detect(detector, torch.cat(scores),
                                   torch.cat(actionness),
                                   torch.cat(times).float(), duration,
                                   model.dataset_meta)
                if 'action_detection' in tasks:
                    output['action_detection'] = detected
            if bank is not None:
                starts = torch.cat(step_starts)  # [S]
                feats = _bank_features(bank, starts)
            if 'qa' in tasks:
                output['qa'] = _answer(heads['qa'], feats, starts, question,
                                       model.dataset_meta)
            if 'captioning' in tasks:
                output['captioning'] = dict(captions=_captions(
                    heads['captioning'], feats, starts, detected))
    finally:
        if bar is not None:
            sys.stderr.write('\n')
        model.train(was_training)
    output['memory'] = memory
    return output


def _find_heads(model: nn.Module) -> Dict[str, nn.Module]:
    """``task -> head`` for the tasks whose head the model has."""
    head = getattr(model, 'head', None)
    found = {}
    for task, head_type in _HEAD_TYPES.items():
        matches = [] if head is None else [
            m for m in head.modules() if isinstance(m, head_type)
        ]
        if matches:
            found[task] = matches[0]
    return found


def _resolve_tasks(task: str, question: Optional[str],
                   heads: Dict[str, nn.Module], cfg: Config) -> List[str]:
    if task not in TASKS + ('all', ):
        raise ValueError(f'task={task!r} is not one of '
                         f'{TASKS + ("all", )}')
    has_question = question is not None and question.strip() != ''
    if task == 'all':
        tasks = [t for t in TASKS if t in heads and
                 (t != 'qa' or has_question)]
        if not tasks:
            raise ValueError(
                f'the model of config {cfg.filename} has no head that '
                f'inference can run (found {sorted(heads) or "none"})')
        return tasks
    if task not in heads:
        raise ValueError(
            f'task {task!r} needs a {_HEAD_TYPES[task].__name__} in '
            f'model.head, but the model of config {cfg.filename} has '
            f'heads for {sorted(heads) or "no task"}')
    if task == 'qa' and not has_question:
        raise ValueError("task 'qa' needs a question (question=..., or "
                         '--question on the command line)')
    return [task]


def _split_pipeline(cfg: Config) -> Tuple[list, SampleFrames, list]:
    """The config's test pipeline, built and cut around ``SampleFrames``:
    the steps that open the video, the sampler, and the steps that decode
    and prepare one clip."""
    try:
        pipeline = cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        raise ValueError(f'config {cfg.filename} has no '
                         'test_dataloader.dataset.pipeline to run') from None
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'hvlm')):
        transforms = [
            TRANSFORMS.build(copy.deepcopy(t)) if isinstance(t, dict) else t
            for t in pipeline
        ]
    where = [
        i for i, t in enumerate(transforms) if isinstance(t, SampleFrames)
    ]
    if len(where) != 1:
        raise ValueError(
            f'test_dataloader.dataset.pipeline of {cfg.filename} must have '
            f'exactly one SampleFrames step (it sets the clip length that '
            f'inference streams by); found {len(where)}')
    i = where[0]
    return transforms[:i], transforms[i], transforms[i + 1:]


def _encode_clip(model: nn.Module, results: dict, window: Tuple[int, int],
                 sampler: SampleFrames, per_clip: Sequence
                 ) -> Tuple[VideoFeatures, VideoDataSample]:
    """Sample, decode, prepare and encode the clip of one window."""
    start, length = window
    # SampleFrames sees only the window: one clip in it, its usual rules
    clip = sampler(dict(results, total_frames=length))
    inds = clip['frame_inds'] + start
    clip.update(frame_inds=inds, frame_times=inds / results['avg_fps'],
                total_frames=results['total_frames'])
    for transform in per_clip:
        clip = transform(clip)
        if clip is None:
            raise ValueError(f'{transform!r} of the test pipeline returned '
                             f'None for {results["filename"]}')
    data = model.data_preprocessor(
        dict(inputs=[clip['inputs']], data_samples=[clip['data_samples']]),
        False)
    feats = model.extract_feat(data['inputs'], data['data_samples'])
    return feats, data['data_samples'][0]


@contextlib.contextmanager
def _carried_memory(model: nn.Module) -> Iterator[List[CrossMemoryAttention]]:
    """Let every ``CrossMemoryAttention`` carry its bank across the clips
    of one video; restore the flags and empty the banks afterwards."""
    attentions = [
        m for m in model.modules() if isinstance(m, CrossMemoryAttention)
    ]
    flags = [a.carry_memory for a in attentions]
    for attention in attentions:
        attention.carry_memory = True
        attention.reset_memory()
    try:
        yield attentions
    finally:
        for attention, flag in zip(attentions, flags):
            attention.carry_memory = flag
            attention.reset_memory()


def _state_bytes(bank: Optional[VideoTokenBank],
                 attentions: Sequence[CrossMemoryAttention]) -> int:
    """Bytes of everything carried from one clip to the next besides the
    per-frame detection outputs."""
    total = 0 if bank is None else bank.nbytes
    for attention in attentions:
        for t in attention.memory_bank or ():
            total += t.numel() * t.element_size()
    return total


def _name(vocabulary: Optional[Sequence[str]], index: int,
          kind: str) -> str:
    if vocabulary is not None and 0 <= index < len(vocabulary):
        return str(vocabulary[index])
    return f'<{kind} {index}>'


def _detect(head: ActionDetectionHead, scores: Tensor, actionness: Tensor,
            times: Tensor, duration: float,
            dataset_meta: Optional[dict]) -> dict:
    """Segments over the whole video from its per-frame ``scores [F, K]``
    and ``actionness [F]`` at ``times [F]``."""
    classes = (dataset_meta or {}).get('classes')
    segments, labels, seg_scores = decode_segments(
        scores, actionness, times, head.actionness_thresholds, head.nms_iou,
        head.max_segments)  # [S, 2], [S], [S]
    segments = segments.double().clamp(0., duration)  # float64: exact ends
    best_scores, best = scores.max(-1)  # [F], [F]
    return dict(
        segments=[
            dict(start=float(s), end=float(e),
                 label=_name(classes, int(k), 'class'), label_id=int(k),
                 score=float(p))
            for (s, e), k, p in zip(segments.tolist(), labels, seg_scores)
        ],
        frames=dict(
            time=times.tolist(),
            actionness=actionness.tolist(),
            label=[_name(classes, k, 'class') for k in best.tolist()],
            score=best_scores.tolist()))


def _bank_features(bank: VideoTokenBank,
                   step_starts: Tensor) -> VideoFeatures:
    """The bank as the features of one clip that the text heads read
    through ``video_memory`` exactly as they read a clip's.

    The clip's grid is ``(S, 1, M)``: ``S`` time steps (every step of every
    window, ``step_starts [S]`` seconds, which become its ``frame_times``)
    by one slot per bank entry. Tubelet ``(s, m)`` belongs to entry ``m``
    when ``m`` covers step ``s``, else to an entry that does, so
    ``video_memory`` gives back each entry's token, ``log(size)`` and its
    first and last step.
    """
    M, S = len(bank), step_starts.numel()
    device = bank.tokens.device
    step = torch.arange(S, device=device)[:, None]  # [S, 1]
    covers = (bank.steps[None, :, 0] <= step) & (
        step <= bank.steps[None, :, 1])  # [S, M]
    if not bool(covers.any(1).all()):
        raise RuntimeError('the token bank lost a time step of the video')
    owner = torch.where(covers,
                        torch.arange(M, device=device)[None],
                        covers.int().argmax(1, keepdim=True))  # [S, M]
    return VideoFeatures(
        tokens=bank.tokens[None],  # [1, M, C]
        size=bank.size[None],  # [1, M]
        index=owner.reshape(1, S * M),  # [1, S*M]
        grid=(S, 1, M),
        temporal_patch=1,
        num_frames=S)


def _bank_sample(step_starts: Tensor) -> VideoDataSample:
    """A data sample whose ``frame_times`` are the bank's step starts."""
    sample = VideoDataSample()
    sample.set_metainfo(dict(frame_times=step_starts.cpu().numpy()))
    return sample


def _answer(head: VideoQAHead, feats: VideoFeatures, step_starts: Tensor,
            question: str, dataset_meta: Optional[dict]) -> dict:
    sample = _bank_sample(step_starts)
    sample.questions = [question]
    pred = head.predict(feats, [sample])[0].pred_qa[0]
    answers = (dataset_meta or {}).get('answers')
    return dict(
        question=question,
        answer=_name(answers, pred['answer_id'], 'answer'),
        answer_id=pred['answer_id'],
        score=pred['score'])


def _captions(head: VideoCaptioningHead, feats: VideoFeatures,
              step_starts: Tensor, detected: Optional[dict]) -> List[dict]:
    """The captioning head's ``predict`` on the bank, given the detected
    segments (when there are any) as its ``pred_segments``."""
    sample = _bank_sample(step_starts)
    if detected is not None and detected['segments']:
        sample.pred_segments = torch.tensor(
            [[s['start'], s['end']] for s in detected['segments']],
            dtype=torch.float64)
        sample.pred_segment_scores = torch.tensor(
            [s['score'] for s in detected['segments']])
    pred = head.predict(feats, [sample])[0].pred_captions
    return [
        dict(start=float(c['start']), end=float(c['end']), text=c['text'])
        for c in pred
    ]
