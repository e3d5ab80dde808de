"""Run a trained model on a video file, the way ``tools/inference.py`` does.

:func:`init_model` builds a model from its config and checkpoint;
:func:`inference_video` streams one video through it clip by clip and
returns plain-Python results (action segments, per-frame actionness, an
answer, dense captions) that ``json.dumps`` can write as they are.
"""
import contextlib
import copy
import re
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
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
from hvlm.models.heads import (ActionDetectionHead, LLMHead,
                               VideoCaptioningHead, VideoQAHead,
                               decode_segments, step_times, video_memory)
from hvlm.registry import MODELS, TRANSFORMS
from hvlm.structures import VideoDataSample
from hvlm.utils import register_all_modules
from hvlm.utils.checkpoint_fit import load_fitting_weights
from hvlm.version import __version__
from .domain import AUTO, resolve_domain, use_domain
from .streaming import ClipRecord, VideoTokenBank, clip_windows
from .video_annotations import video_annotations

__all__ = ['TASKS', 'init_model', 'inference_video']

# What inference_video can do, and the heads that can do each task (the
# first the model has is used); an LLMHead does the text tasks it was built
# for (its `tasks`).
TASKS = ('action_detection', 'qa', 'captioning')
_HEAD_TYPES = dict(
    action_detection=(ActionDetectionHead, ),
    qa=(VideoQAHead, LLMHead),
    captioning=(VideoCaptioningHead, LLMHead))
_LLM_TASKS = dict(qa='video_qa', captioning='video_captioning')


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
    model.checkpoint_file = None if checkpoint is None else str(checkpoint)
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
                    progress: bool = True,
                    domain: Optional[str] = AUTO,
                    score_thr: float = 0.,
                    max_segments: Optional[int] = None,
                    max_captions: Optional[int] = None,
                    top_k: int = 5,
                    ann_file: Optional[str] = None) -> Dict:
    """Run ``model`` on a whole video, one clip at a time.

    The video is opened once with the first steps of the config's test
    pipeline (``DecordInit``) and cut into windows that cover it
    (:func:`clip_windows`, from the pipeline's ``SampleFrames`` clip length
    and interval). Each window is sampled by that ``SampleFrames``, decoded
    and preprocessed by the rest of the test pipeline, encoded, and
    dropped: only bounded state lives on between clips.

    - Action detection keeps each clip's per-frame class scores and
      actionness (what ``ActionDetectionHead.predict`` writes; a few
      numbers per decoded frame, in arrays allocated once:
      :class:`ClipRecord`) and, at the end, decodes segments over the
      whole video with the head's own thresholds and NMS. Segment ends are
      clipped to the video's duration.
    - QA and captioning (a ``VideoQAHead`` / ``VideoCaptioningHead``, or
      an ``LLMHead`` that generates the text) read the video's tokens from a
      :class:`VideoTokenBank` of at most ``memory_tokens`` entries, merged
      by similarity as clips arrive, which the heads read as if it were
      one clip (:func:`_bank_features`). The captioning head is handed the
      detected segments as ``pred_segments`` and captions the
      ``max_captions`` best of them as in the test loop (its ``segments``
      setting), or the whole video when nothing was detected.
    - A backbone with ``CrossMemoryAttention`` carries its bank from clip
      to clip of the video (``carry_memory`` is switched on for the call
      and the banks are reset before and after).
    - The domain modules use ``domain`` (see :func:`resolve_domain`: by
      default what the test loop would use), a merged adapter included.

    A one-clip video gives what the model's ``test_step`` gives on that
    clip through the test dataloader (times rounded to milliseconds,
    segments in time order).

    Args:
        model (nn.Module): From :func:`init_model` (needs ``model.cfg``).
        video (str | Path): Any file decord reads.
        task (str): One of :data:`TASKS` or ``'all'``: every task the model
            has a head for (QA only when ``question`` is given).
        question (str, optional): The question for ``'qa'``.
        memory_tokens (int): Bound on the token bank of QA and captioning.
        progress (bool): Show a progress bar over the clips on stderr.
        domain (str, optional): ``'auto'``, a domain name, or ``None`` for
            the base model without domain modules.
        score_thr (float): Segments scored below it are dropped (before
            captioning).
        max_segments (int, optional): Most segments kept; defaults to the
            detection head's ``max_segments``.
        max_captions (int, optional): Most segments captioned (the best
            scored); defaults to the captioning head's
            ``max_pred_segments``.
        top_k (int): Answers reported with their probabilities.
        ann_file (str, optional): An ``action_detection.json`` listing the
            video; by default the one of the data layout around it, if any
            (see :func:`video_annotations`).

    Returns:
        dict: ``video``, ``duration`` (s), ``fps``, ``num_frames``,
        ``num_clips``, ``tasks``, ``config``, ``checkpoint``,
        ``hvlm_version``, ``domain`` (``name``, ``source``), ``warnings``
        (also meant for the user's terminal); per task run,
        ``action_detection`` (``segments``: ``start``, ``end`` (s),
        ``label``, ``label_id``, ``score``, in time order; ``max_segments``,
        ``max_segments_reached``, ``score_thr``; ``frames``: ``time``,
        ``actionness``, ``label``, ``score`` per decoded frame), ``qa``
        (``question``, ``answer``, ``answer_id``, ``score``, ``top_k``,
        ``unknown_words``; from an ``LLMHead`` the generated text, with
        ``answer_id`` -1, ``score`` None and ``top_k`` empty) and
        ``captioning`` (``captions``: ``start``,
        ``end``, ``text``; ``max_captions``, ``max_captions_reached``);
        ``ground_truth`` (``actions``) when annotations list the video; and
        ``memory``: the state kept between clips (``bank_tokens``,
        ``cross_memory_tokens``, ``state_bytes`` at the end,
        ``peak_state_bytes``) and ``per_frame_bytes``.

    Raises:
        VideoReadError: The video is missing, unreadable or shorter than
            one clip; the message names the file.
        ValueError: An unknown task, a task the model has no head for,
            ``'qa'`` without a question, an unknown domain or a bad limit.
    """
    cfg = getattr(model, 'cfg', None)
    if cfg is None:
        raise ValueError('model has no .cfg (its config): build it with '
                         'hvlm.apis.init_model(config, checkpoint)')
    heads = _find_heads(model)
    tasks = _resolve_tasks(task, question, heads, cfg)
    for text_task in ('qa', 'captioning'):
        if text_task in tasks and not isinstance(heads[text_task], LLMHead):
            heads[text_task].require_tokenizer()
    detector = heads.get('action_detection') if (
        'action_detection' in tasks or 'captioning' in tasks) else None
    max_segments = _limit('max_segments', max_segments,
                          detector.max_segments if detector else 1)
    max_captions = _limit(
        'max_captions', max_captions,
        heads['captioning'].max_pred_segments if 'captioning' in heads
        else 1)
    if not 0. <= score_thr <= 1.:
        raise ValueError(f'score_thr={score_thr} must be in [0, 1]')
    top_k = _limit('top_k', top_k, 1)
    warnings: List[str] = []
    ground_truth, video_domain = _annotations(video, ann_file, warnings)
    choice = resolve_domain(model, domain, video_domain)
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

    # per decoded frame: time, class scores [K], actionness; per step: start
    record = ClipRecord(len(windows))
    last_frame, peak = -1, 0
    bar = ProgressBar(len(windows), file=sys.stderr) if progress else None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _carried_memory(model) as attentions, \
                use_domain(model, choice) as sample_domain:
            for window in windows:
                feats, sample = _encode_clip(model, results, window, sampler,
                                             per_clip, sample_domain)
                inds = np.asarray(sample.metainfo['frame_inds'])
                new = inds > last_frame  # the tail window overlaps
                last_frame = int(inds.max())
                record.append(time=np.asarray(
                    sample.metainfo['frame_times'], np.float64)[new])
                if detector is not None:
                    detector.predict(feats, [sample])
                    record.append(
                        scores=_numpy(sample.pred_frame_scores)[new],
                        actionness=_numpy(sample.pred_actionness)[new])
                if bank is not None:
                    tokens, _, steps = video_memory(feats)  # [1, N, *]
                    offset = len(record['step_start']) \
                        if 'step_start' in record else 0
                    bank.add(tokens[0], feats.size[0], steps[0] + offset)
                    spans = step_times(feats, sample.metainfo['frame_times'])
                    record.append(step_start=spans[:, 0].numpy())  # [T0]
                del feats, sample
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
                peak_state_bytes=peak,
                per_frame_bytes=record.nbytes)
            output = dict(
                video=str(video), duration=_ms(duration), fps=fps,
                num_frames=total, num_clips=len(windows), tasks=list(tasks),
                config=cfg.filename,
                checkpoint=getattr(model, 'checkpoint_file', None),
                hvlm_version=__version__,
                domain=dict(name=choice.name, source=choice.source),
                warnings=warnings)
            detected = None
            if detector is not None:
                detected = _detect(detector,
                                   torch.from_numpy(record['scores']),
                                   torch.from_numpy(record['actionness']),
                                   torch.from_numpy(record['time']).float(),
                                   duration, model.dataset_meta,
                                   max_segments, score_thr)
                if detected['max_segments_reached']:
                    warnings.append(
                        f'more than max_segments={max_segments} segments '
                        f'scored at least {score_thr}: kept the '
                        f'{max_segments} best (raise --max-segments or '
                        '--score-thr)')
                if 'action_detection' in tasks:
                    output['action_detection'] = detected
            if bank is not None:
                starts = torch.from_numpy(record['step_start'])  # [S]
                feats = _bank_features(bank, starts)
            if 'qa' in tasks and isinstance(heads['qa'], LLMHead):
                output['qa'] = _generated_answer(
                    heads['qa'], feats, question,
                    _bank_sample(starts, choice.name))
            elif 'qa' in tasks:
                output['qa'] = _answer(heads['qa'], feats, question,
                                       model.dataset_meta, top_k)
                if output['qa']['unknown_words']:
                    warnings.append(
                        'the question has words the model never saw in '
                        'training: ' + ', '.join(
                            repr(w) for w in output['qa']['unknown_words']) +
                        '; it reads them as unknown, so the answer cannot '
                        'be about them')
            if 'captioning' in tasks:
                output['captioning'] = _captions(
                    heads['captioning'], feats, starts, detected,
                    max_captions, choice.name)
                if output['captioning']['max_captions_reached']:
                    warnings.append(
                        f'captioned the max_captions={max_captions} best '
                        f'scored of {len(detected["segments"])} segments '
                        '(raise --max-captions)')
    finally:
        if bar is not None:
            sys.stderr.write('\n')
        model.train(was_training)
    if ground_truth is not None:
        output['ground_truth'] = dict(actions=ground_truth)
    output['memory'] = memory
    return output


def _limit(name: str, value: Optional[int], default: int) -> int:
    value = default if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{name}={value!r} must be a positive integer')
    return value


def _ms(seconds: float) -> float:
    """Seconds rounded to the millisecond."""
    return round(float(seconds), 3)


def _annotations(video, ann_file: Optional[str],
                 warnings: List[str]) -> Tuple[Optional[list],
                                               Optional[str]]:
    """Ground truth and domain of ``video``; a broken file found next to
    the video is a warning, a broken ``ann_file`` an error."""
    if ann_file is not None:
        return video_annotations(str(video), ann_file)
    try:
        return video_annotations(str(video))
    except (OSError, ValueError, KeyError, TypeError) as err:
        warnings.append(f'ignored the annotations next to {video}: {err}')
        return None, None


def _find_heads(model: nn.Module) -> Dict[str, nn.Module]:
    """``task -> head`` for the tasks whose head the model has."""
    head = getattr(model, 'head', None)
    found = {}
    for task, head_types in _HEAD_TYPES.items():
        matches = [] if head is None else [
            m for m in head.modules() if isinstance(m, head_types) and (
                not isinstance(m, LLMHead) or _LLM_TASKS[task] in m.tasks)
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
            f'task {task!r} needs a '
            f'{" or ".join(t.__name__ for t in _HEAD_TYPES[task])} in '
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
                 sampler: SampleFrames, per_clip: Sequence,
                 domain: Optional[str] = None
                 ) -> Tuple[VideoFeatures, VideoDataSample]:
    """Sample, decode, prepare and encode the clip of one window;
    ``domain`` becomes the clip's metadata domain (what the model's
    domain modules read without a router)."""
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
    if domain is not None:
        clip['data_samples'].set_metainfo(dict(domain=domain))
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


def _numpy(tensor: Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()


def _name(vocabulary: Optional[Sequence[str]], index: int,
          kind: str) -> str:
    if vocabulary is not None and 0 <= index < len(vocabulary):
        return str(vocabulary[index])
    return f'<{kind} {index}>'


def _detect(head: ActionDetectionHead, scores: Tensor, actionness: Tensor,
            times: Tensor, duration: float, dataset_meta: Optional[dict],
            max_segments: int, score_thr: float) -> dict:
    """Segments over the whole video from its per-frame ``scores [F, K]``
    and ``actionness [F]`` at ``times [F]``: the best ``max_segments``
    scored at least ``score_thr``, in time order."""
    classes = (dataset_meta or {}).get('classes')
    # one more than asked: whether the limit cut anything off
    segments, labels, seg_scores = decode_segments(
        scores, actionness, times, head.actionness_thresholds, head.nms_iou,
        max_segments + 1)  # [S, 2], [S], [S], best first
    above = seg_scores >= score_thr  # a suffix of the best-first list
    segments, labels, seg_scores = (segments[above], labels[above],
                                    seg_scores[above])
    reached = len(seg_scores) > max_segments
    segments = segments[:max_segments].double().clamp(0., duration)
    found = [
        dict(start=_ms(s), end=_ms(e),
             label=_name(classes, int(k), 'class'), label_id=int(k),
             score=float(p))
        for (s, e), k, p in zip(segments.tolist(), labels.tolist(),
                                seg_scores.tolist())
    ]
    found.sort(key=lambda seg: (seg['start'], seg['end'], -seg['score']))
    best_scores, best = scores.max(-1)  # [F], [F]
    return dict(
        segments=found,
        max_segments=max_segments,
        max_segments_reached=reached,
        score_thr=score_thr,
        frames=dict(
            time=[_ms(t) for t in times.tolist()],
            actionness=actionness.tolist(),
            label=[_name(classes, k, 'class') for k in best.tolist()],
            score=best_scores.tolist()))


def _bank_features(bank: VideoTokenBank,
                   step_starts: Tensor) -> VideoFeatures:
    """The bank as the features of one clip that the text heads read
    through ``video_memory`` exactly as they read a clip's.

    The clip's grid is ``(S, 1, K)``: ``S`` time steps (every step of every
    window, ``step_starts [S]`` seconds, which become its ``frame_times``)
    by ``K`` slots, the most bank entries that cover one step. At step
    ``s``, the entries covering it take the first slots and the first of
    them also fills the rest, so every entry owns a tubelet at each step
    it covers and at no other: ``video_memory`` gives back each entry's
    token, ``log(size)`` and its first and last step. (One slot per entry,
    ``(S, 1, M)``, gives the same, but its ``[S, M]`` index grows with the
    video by kilobytes per step.)
    """
    S = step_starts.numel()
    device = bank.tokens.device
    step = torch.arange(S, device=device)[:, None]  # [S, 1]
    covers = (bank.steps[None, :, 0] <= step) & (
        step <= bank.steps[None, :, 1])  # [S, M] bool
    count = covers.sum(1)  # [S]
    if not bool((count > 0).all()):
        raise RuntimeError('the token bank lost a time step of the video')
    K = int(count.max())
    # every (step, entry) pair that covers, step-major: [P], [P]
    pair_step, pair_entry = covers.nonzero(as_tuple=True)
    first_pair = count.cumsum(0) - count  # [S]
    slot = torch.arange(pair_step.numel(),
                        device=device) - first_pair[pair_step]  # [P]
    owner = pair_entry[first_pair][:, None].repeat(1, K)  # [S, K]
    owner[pair_step, slot] = pair_entry
    return VideoFeatures(
        tokens=bank.tokens[None],  # [1, M, C]
        size=bank.size[None],  # [1, M]
        index=owner.reshape(1, S * K),  # [1, S*K]
        grid=(S, 1, K),
        temporal_patch=1,
        num_frames=S)


def _bank_sample(step_starts: Tensor,
                 domain: Optional[str] = None) -> VideoDataSample:
    """A data sample whose ``frame_times`` are the bank's step starts, of
    ``domain`` (what an LM's per-domain LoRA reads)."""
    sample = VideoDataSample()
    sample.set_metainfo(dict(frame_times=step_starts.cpu().numpy(),
                             domain=domain))
    return sample


def _generated_answer(head: LLMHead, feats: VideoFeatures, question: str,
                      sample: VideoDataSample) -> dict:
    """The answer an ``LLMHead`` writes (its ``generation`` settings): text,
    with no answer id, score or ranking (``answer_id`` -1, ``score``
    None, ``top_k`` empty); its tokenizer has no unknown words."""
    sample.questions = [question]
    pred = head.predict(feats, [sample], tasks=('video_qa', ))[0]
    return dict(question=question, answer=pred.pred_qa[0]['answer'],
                answer_id=-1, score=None, top_k=[], unknown_words=[])


def _answer(head: VideoQAHead, feats: VideoFeatures, question: str,
            dataset_meta: Optional[dict], top_k: int) -> dict:
    """The ``top_k`` answers with their probabilities, and the question's
    words that the tokenizer maps to ``[UNK]`` (never seen in training)."""
    probs = head.answer_probs(
        feats, torch.zeros(1, dtype=torch.long, device=feats.tokens.device),
        [question])[0]  # [A]
    best, ids = probs.topk(min(top_k, probs.numel()))  # [k], [k]
    answers = (dataset_meta or {}).get('answers')
    ranked = [
        dict(answer=_name(answers, i, 'answer'), answer_id=i, score=p)
        for i, p in zip(ids.tolist(), best.tolist())
    ]
    tokenizer = head.require_tokenizer()
    unknown = [
        word for word in re.findall(r'\w+', question)
        if tokenizer.encode(word) == [tokenizer.unk_id]
    ]
    return dict(question=question, **ranked[0], top_k=ranked,
                unknown_words=unknown)


def _captions(head: Union[VideoCaptioningHead, LLMHead],
              feats: VideoFeatures, step_starts: Tensor,
              detected: Optional[dict], max_captions: int,
              domain: Optional[str] = None) -> dict:
    """The captioning head's ``predict`` on the bank, given the detected
    segments (when there are any) as its ``pred_segments``, of which it
    captions the ``max_captions`` best scored; captions in time order."""
    sample = _bank_sample(step_starts, domain)
    segments = [] if detected is None else detected['segments']
    if segments:
        sample.pred_segments = torch.tensor(
            [[s['start'], s['end']] for s in segments], dtype=torch.float64)
        sample.pred_segment_scores = torch.tensor(
            [s['score'] for s in segments])
    kept = head.max_pred_segments
    head.max_pred_segments = max_captions
    try:
        pred = (head.predict(feats, [sample], tasks=('video_captioning', ))
                if isinstance(head, LLMHead) else
                head.predict(feats, [sample]))[0].pred_captions
    finally:
        head.max_pred_segments = kept
    captions = sorted(
        (dict(start=_ms(c['start']), end=_ms(c['end']), text=c['text'])
         for c in pred), key=lambda c: (c['start'], c['end']))
    from_segments = head.segments in ('auto', 'pred') and bool(segments)
    return dict(
        captions=captions,
        max_captions=max_captions,
        max_captions_reached=from_segments and len(segments) > max_captions)
