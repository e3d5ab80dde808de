"""Speed of the LLM head: generation with and without the KV cache, the
training step with the LM frozen and with LoRA, and how many video tokens
fit the LM's context with and without token merging."""
import copy
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch

from hvlm.registry import HEADS, MODELS
from hvlm.structures import VideoDataSample


def llm_head_config(cfg) -> dict:
    """The config (a plain dict) of the model's ``LLMHead``, alone or in a
    ``MultiTaskHead``."""
    head = cfg['model']['head']
    for candidate in [head, *(head.get('heads') or {}).values()]:
        if candidate.get('type') == 'LLMHead':
            return copy.deepcopy(dict(candidate.to_dict() if hasattr(
                candidate, 'to_dict') else candidate))
    raise ValueError(f'{getattr(cfg, "filename", "the config")}: '
                     'model.head has no LLMHead')


def median_seconds(fn: Callable[[], object], iters: int,
                   warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tokens_per_clip(backbone_cfg: dict, clip_shape: Tuple[int, int, int]
                    ) -> Tuple[int, int]:
    """Tokens one clip leaves the backbone with: with its merger, and with
    ``merger=None`` (every tubelet kept)."""
    counts = []
    for merged in (True, False):
        cfg = copy.deepcopy(backbone_cfg)
        if not merged:
            cfg['merger'] = None
        backbone = MODELS.build(cfg).eval()
        clip = torch.zeros(1, backbone_cfg.get('in_channels', 3), *clip_shape)
        with torch.no_grad():
            counts.append(backbone(clip).tokens.shape[1])
    return counts[0], counts[1]


def _samples(num_videos: int, questions: int) -> List[VideoDataSample]:
    samples = []
    for v in range(num_videos):
        s = VideoDataSample(metainfo=dict(video_id=f'v{v}', domain='sports'))
        s.gt_qa = [dict(question='what is the object doing first?',
                        answer='rolls to the left', answer_id=-1)
                   for _ in range(questions)]
        samples.append(s)
    return samples


def _features(num_videos: int, num_tokens: int, channels: int):
    from hvlm.structures import VideoFeatures
    tokens = torch.randn(num_videos, num_tokens, channels)
    index = torch.arange(num_tokens).expand(num_videos, -1)
    return VideoFeatures(tokens, torch.ones(num_videos, num_tokens), index,
                         (1, 1, num_tokens), 1, 1, 1)


def benchmark_llm(head_cfg: dict,
                  backbone_cfg: Optional[dict] = None,
                  clip_shape: Tuple[int, int, int] = (4, 64, 64),
                  num_clips: int = 4,
                  batch_size: int = 2,
                  video_tokens: int = 64,
                  new_tokens: int = 32,
                  lora: Optional[dict] = None,
                  iters: int = 3,
                  warmup: int = 1,
                  threads: Optional[int] = None) -> Dict[str, float]:
    """Every figure beside its baseline, measured in this run.

    Args:
        head_cfg (dict): An ``LLMHead`` config (its ``llm`` directory is
            loaded).
        backbone_cfg (dict, optional): The backbone whose tokens per clip
            are counted (with and without its merger).
        clip_shape (tuple): ``(T, H, W)`` of a clip for the token count.
        num_clips (int): Clips per video in the token count.
        batch_size (int): Videos per step (one question each).
        video_tokens (int): Video tokens before each prompt (generation and
            training step).
        new_tokens (int): Tokens generated per answer.
        lora (dict, optional): The LoRA of the "LoRA" training step;
            ``q_proj``/``v_proj``/``c_attn`` rank 8 by default.
    """
    if threads:
        torch.set_num_threads(threads)
    out: Dict[str, float] = {}
    head_cfg = copy.deepcopy(head_cfg)
    head_cfg['llm'] = dict(head_cfg['llm'], lora=None)
    head_cfg['generation'] = dict(head_cfg.get('generation') or {},
                                  max_new_tokens=new_tokens)
    head = HEADS.build(head_cfg).eval()
    lm = head.llm
    C = head_cfg['in_channels']
    prompt = len(lm.encode(head.prompts['video_qa'].format(
        question='what is the object doing first?')))
    out['context_length'] = float(lm.context_length)
    out['prompt_tokens'] = float(prompt)

    # generation: greedy, the same tokens with and without the cache
    embeds = torch.randn(batch_size, video_tokens + prompt, lm.embed_dims)
    mask = torch.ones(batch_size, video_tokens + prompt, dtype=torch.long)
    results = {}
    for cache in (False, True):
        ids = lm.generate(embeds, mask, new_tokens, use_cache=cache)
        count = sum(len(r) + (len(r) < new_tokens) for r in ids)
        seconds = median_seconds(
            lambda: lm.generate(embeds, mask, new_tokens, use_cache=cache),
            iters, warmup)
        results[cache] = ids
        key = 'with_cache' if cache else 'without_cache'
        out[f'tokens_per_s_{key}'] = count / seconds
    out['cache_speedup'] = out['tokens_per_s_with_cache'] / \
        out['tokens_per_s_without_cache']
    out['cache_same_tokens'] = float(results[True] == results[False])

    # one training step: LM frozen (projector only) against LoRA on the LM
    feats = _features(batch_size, video_tokens, C)
    samples = _samples(batch_size, 1)
    lora = lora or dict(type='LoRAAdapter', domains=('sports', ),
                        target_modules=('q_proj', 'v_proj', 'c_attn'),
                        rank=8, alpha=16., dropout=0.)
    for name, llm_lora in (('frozen', None), ('lora', lora)):
        cfg = copy.deepcopy(head_cfg)
        cfg['llm'] = dict(cfg['llm'], lora=llm_lora)
        step_head = HEADS.build(cfg).train()

        def step():
            step_head.zero_grad(set_to_none=True)
            sum(step_head.loss(feats, samples).values()).backward()

        out[f'train_step_s_{name}'] = median_seconds(step, iters, warmup)
        out[f'trainable_params_{name}'] = float(sum(
            p.numel() for p in step_head.parameters() if p.requires_grad))
    out['lora_step_ratio'] = out['train_step_s_lora'] / \
        out['train_step_s_frozen']

    if backbone_cfg is not None:
        merged, unmerged = tokens_per_clip(backbone_cfg, clip_shape)
        room = lm.context_length - prompt - new_tokens
        out['tokens_per_clip_merged'] = float(merged)
        out['tokens_per_clip_unmerged'] = float(unmerged)
        out['video_tokens_per_video_merged'] = float(merged * num_clips)
        out['video_tokens_per_video_unmerged'] = float(unmerged * num_clips)
        out['clips_that_fit_merged'] = float(room // merged)
        out['clips_that_fit_unmerged'] = float(room // unmerged)
    return out
