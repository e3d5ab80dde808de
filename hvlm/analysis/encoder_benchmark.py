"""Speed of the pretrained frame encoder: the wrapper against calling
``transformers`` directly, and training from a feature cache against
decoding and encoding every step."""
import copy
import json
import logging
import os.path as osp
import random
import statistics
import time
from typing import Callable, Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

# The real architectures the benchmark can build with random weights: speed
# does not depend on weight values. Only the image tower is timed; the text
# tower is kept small.
ARCHS = {
    'clip-vit-b16':
    dict(
        vision=dict(hidden_size=768, intermediate_size=3072,
                    num_hidden_layers=12, num_attention_heads=12,
                    image_size=224, patch_size=16, projection_dim=512),
        projection_dim=512,
        mean=[0.48145466, 0.4578275, 0.40821073],
        std=[0.26862954, 0.26130258, 0.27577711]),
}
_WORDS = ['<pad>', '<unk>', '<bos>', '<eos>', 'a', 'video', 'of', 'person',
          'running', 'playing', 'sports']


def save_random_clip(path: str, arch: str = 'clip-vit-b16',
                     seed: int = 0) -> None:
    """Write a randomly initialised CLIP of ``arch`` to ``path`` in the
    ``save_pretrained`` layout, with ``preprocessor_config.json`` and a
    word-level tokenizer, so that :class:`HFVisionEncoder` loads it as it
    would a downloaded checkpoint."""
    if arch not in ARCHS:
        raise ValueError(f'arch={arch!r}: expected one of {sorted(ARCHS)}')
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast
    spec = ARCHS[arch]
    text = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                num_attention_heads=2, vocab_size=len(_WORDS),
                max_position_embeddings=32, pad_token_id=0, bos_token_id=2,
                eos_token_id=3, projection_dim=spec['projection_dim'])
    torch.manual_seed(seed)
    config = CLIPConfig(text_config=text, vision_config=spec['vision'],
                        projection_dim=spec['projection_dim'])
    CLIPModel(config).save_pretrained(path)
    tok = Tokenizer(models.WordLevel(
        {w: i for i, w in enumerate(_WORDS)}, unk_token='<unk>'))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single='<bos> $A <eos>', special_tokens=[('<bos>', 2), ('<eos>', 3)])
    PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token='<pad>', unk_token='<unk>',
        bos_token='<bos>', eos_token='<eos>').save_pretrained(path)
    size = spec['vision']['image_size']
    with open(osp.join(path, 'preprocessor_config.json'), 'w') as f:
        json.dump(
            dict(image_processor_type='CLIPImageProcessor', do_resize=True,
                 size=dict(shortest_edge=size), do_center_crop=True,
                 crop_size=dict(height=size, width=size), do_rescale=True,
                 rescale_factor=1 / 255, do_normalize=True,
                 image_mean=spec['mean'], image_std=spec['std']),
            f, indent=2)


def _round_robin(settings: Dict[str, Callable[[], object]], rounds: int,
                 warmup: int, seed: int) -> Dict[str, List[float]]:
    """Seconds of each setting per round, one call each per round in an
    order shuffled every round, so load changes hit all settings alike."""
    times = {k: [] for k in settings}
    order = random.Random(seed)
    for i in range(warmup + rounds):
        names = list(settings)
        order.shuffle(names)
        for name in names:
            start = time.perf_counter()
            settings[name]()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


@torch.no_grad()
def benchmark_wrapper(pretrained: str, batch_size: int = 2,
                      num_frames: int = 8, rounds: int = 5, warmup: int = 1,
                      seed: int = 0) -> Dict[str, object]:
    """Frames/s of the frozen :class:`HFVisionEncoder` against the
    ``transformers`` model it wraps, loaded on its own from the same
    directory and called on the same normalised frames.

    The wrapper gets clips ``[B, C, T, H, W]`` at the checkpoint's size
    (no resize) and encodes all ``B*T`` frames in one pass
    (``frames_per_pass=None``); the baseline gets those frames as
    ``[B*T, C, H, W]``. Both run in eval mode under ``no_grad``.

    Returns:
        dict: per setting (``transformers``, ``hvlm``) the median seconds
        per call and frames/s; ``overhead`` = hvlm seconds / transformers
        seconds - 1; the outputs' max abs difference.
    """
    import hvlm.models  # noqa: F401
    from hvlm.models.backbones.hf_pretrained import quiet_transformers
    from hvlm.registry import MODELS
    torch.manual_seed(seed)
    encoder = MODELS.build(
        dict(type='HFVisionEncoder', pretrained=pretrained, freeze=True,
             frames_per_pass=None)).eval()
    with quiet_transformers():  # its report of the unused text tower
        direct = type(encoder.model).from_pretrained(
            pretrained, local_files_only=True).eval()
    H, W = encoder.image_size
    clips = torch.randn(batch_size, encoder.in_channels, num_frames, H, W)
    frames = clips.transpose(1, 2).flatten(0, 1).contiguous()  # [B*T,C,H,W]
    times = _round_robin(
        dict(transformers=lambda: direct(pixel_values=frames),
             hvlm=lambda: encoder(clips)), rounds, warmup, seed)
    seconds = {k: statistics.median(v) for k, v in times.items()}
    n = batch_size * num_frames
    ours = encoder(clips).patch_tokens.flatten(0, 1).flatten(1, 2)
    ref = direct(pixel_values=frames).last_hidden_state[:,
                                                        encoder.
                                                        num_prefix_tokens:]
    return dict(
        seconds=seconds,
        call_seconds=times,
        frames_per_s={k: n / s for k, s in seconds.items()},
        overhead=seconds['hvlm'] / seconds['transformers'] - 1,
        max_abs_diff=(ours - ref).abs().max().item(),
        frames=n, image_size=(H, W), rounds=rounds,
        model_class=type(direct).__name__)


def time_train_steps(cfg: Config, iters: int = 5, warmup: int = 1,
                     seed: int = 0) -> List[float]:
    """Seconds of each of ``iters`` training iterations after ``warmup``
    untimed ones, each timed from asking the train loader for a batch to
    the end of ``model.train_step(batch, optim_wrapper)`` (what mmengine's
    train loops run per iteration): data loading, preprocessing, forward,
    loss, backward and the optimizer step. The model, optimizer wrapper,
    loader and tokenizer are set up as a run sets them up; the loader
    starts again when it runs out."""
    from types import SimpleNamespace

    from mmengine.optim import build_optim_wrapper

    from hvlm.engine.hooks import TokenizerHook
    from hvlm.engine.runner import HVLMRunner
    from hvlm.registry import MODELS
    from hvlm.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg.model))
    logger = MMLogger.get_current_instance()
    level = logger.level
    # init_weights logs every parameter, the optimizer every frozen one
    logger.setLevel(logging.ERROR)
    try:
        model.init_weights()
        optim_wrapper = build_optim_wrapper(
            model, copy.deepcopy(cfg.optim_wrapper))
    finally:
        logger.setLevel(level)
    model.train()
    loader = HVLMRunner.build_dataloader(
        copy.deepcopy(cfg.train_dataloader), seed=seed)
    # The hook's own code; it reads only these two runner attributes.
    TokenizerHook().before_train(
        SimpleNamespace(model=model, train_dataloader=loader))
    batches = iter(loader)
    times = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        model.train_step(batch, optim_wrapper)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def shrink_training(cfg: Config, pretrained: str, batch_size: int,
                    num_videos: Optional[int], num_workers: int) -> Config:
    """``cfg`` with the stem at ``pretrained``, the given batch size and
    workers, and its train/val/test sets cut to their first
    ``num_videos`` samples (``None``: all)."""
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.stem.pretrained = pretrained
    cfg.train_dataloader.batch_size = batch_size
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        loader.num_workers = num_workers
        loader.persistent_workers = False
        loader.pop('prefetch_factor', None)
        if num_videos is not None:
            loader.dataset.indices = num_videos
    return cfg


def benchmark_cache(video_cfg: Config, cached_cfg: Config, pretrained: str,
                    cache_dir: str, batch_size: int = 2,
                    num_videos: Optional[int] = None, iters: int = 5,
                    warmup: int = 1, num_workers: int = 0,
                    seed: int = 0) -> Dict[str, object]:
    """Training iterations/s on the fly (decode, resize, ViT, stages)
    against from a cache of the ViT's tokens, extracted first (timed on its
    own) with ``tools/misc/extract_features.py``'s code.

    Both runs use the same model config, batch size, videos and seed; only
    the pipeline and ``data_preprocessor.cached_features`` differ, as
    between the two shipped configs.

    Returns:
        dict: ``extract_s`` (seconds to extract the train split's cache),
        per setting (``on_the_fly``, ``cached``) the per-iteration seconds
        and the median, iterations/s, and ``speedup`` = on-the-fly median /
        cached median.
    """
    from hvlm.apis.feature_extraction import extract_features
    if num_videos is None:
        num_videos = batch_size * (warmup + iters)
    video_cfg = shrink_training(video_cfg, pretrained, batch_size,
                                num_videos, num_workers)
    cached_cfg = shrink_training(cached_cfg, pretrained, batch_size,
                                 num_videos, num_workers)
    pipeline = cached_cfg.train_dataloader.dataset.pipeline
    if pipeline[0].get('type') != 'LoadCachedFeatures':
        raise ValueError('the cached config\'s train pipeline must start '
                         'with LoadCachedFeatures, got '
                         f'{pipeline[0].get("type")!r}')
    pipeline[0].cache_dir = cache_dir
    start = time.perf_counter()
    index = extract_features(video_cfg, 'train', cache_dir, progress=False)
    extract_s = time.perf_counter() - start
    with open(index) as f:  # the split may hold fewer than asked for
        num_videos = len(json.load(f)['videos'])
    steps = dict(
        on_the_fly=time_train_steps(video_cfg, iters, warmup, seed),
        cached=time_train_steps(cached_cfg, iters, warmup, seed))
    seconds = {k: statistics.median(v) for k, v in steps.items()}
    return dict(
        extract_s=extract_s,
        step_seconds=steps,
        seconds=seconds,
        iters_per_s={k: 1 / s for k, s in seconds.items()},
        speedup=seconds['on_the_fly'] / seconds['cached'],
        batch_size=batch_size, num_videos=num_videos, iters=iters,
        warmup=warmup, num_workers=num_workers)


def _span(values: List[float], scale: float = 1.) -> str:
    return f'{scale * min(values):.3f}-{scale * max(values):.3f}'


def format_encoder_benchmark(wrapper: Optional[Dict[str, object]],
                             cache: Optional[Dict[str, object]]) -> str:
    """The two tables the tool prints."""
    lines = [f'torch threads: {torch.get_num_threads()}']
    if wrapper is not None:
        lines += [
            '', f'A. frozen image tower, {wrapper["frames"]} frames at '
            f'{wrapper["image_size"]} per call, no_grad, median of '
            f'{wrapper["rounds"]} round-robin rounds',
            f'{"setting":<44}{"ms/call":>11}{"frames/s":>10}'
            f'{"min-max ms":>20}'
        ]
        names = dict(transformers=f'transformers {wrapper["model_class"]}',
                     hvlm='hvlm HFVisionEncoder')
        for k, name in names.items():
            calls = wrapper['call_seconds'][k]
            lines.append(f'{name:<44}{1000 * wrapper["seconds"][k]:>11.3f}'
                         f'{wrapper["frames_per_s"][k]:>10.2f}'
                         f'{_span(calls, 1000):>20}')
        lines.append(f'wrapper overhead: {100 * wrapper["overhead"]:+.1f}% '
                     f'(outputs differ by at most '
                     f'{wrapper["max_abs_diff"]:.1e})')
    if cache is not None:
        lines += [
            '', f'B. training iterations, batch {cache["batch_size"]}, '
            f'{cache["num_videos"]} videos, median of {cache["iters"]} after '
            f'{cache["warmup"]} warm-up, data loading included '
            f'(num_workers={cache["num_workers"]}), model.train_step',
            f'cache extraction of the {cache["num_videos"]} videos: '
            f'{cache["extract_s"]:.1f} s',
            f'{"setting":<44}{"s/iter":>9}{"iter/s":>10}'
            f'{"min-max s":>20}'
        ]
        for k, name in (('on_the_fly', 'decode + encode every step'),
                        ('cached', 'from the feature cache')):
            lines.append(f'{name:<44}{cache["seconds"][k]:>9.3f}'
                         f'{cache["iters_per_s"][k]:>10.3f}'
                         f'{_span(cache["step_seconds"][k]):>20}')
        lines.append(f'cache speedup: {cache["speedup"]:.2f}x')
    return '\n'.join(lines)
