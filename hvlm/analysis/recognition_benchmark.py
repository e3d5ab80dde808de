"""Time the training step of each prompt learner beside the linear probe."""
import random
import statistics
import time
from typing import Dict, Optional, Sequence

import torch

from hvlm.registry import MODELS

# method -> CLIPRecognizer arguments; 'linear_probe' is the baseline
METHODS = {
    'linear_probe': dict(classifier='linear'),
    'zero_shot_templates': dict(),
    'video_coop': dict(prompt_learner=dict(type='VideoCoOp', ctx_len=4)),
    'dual_coop': dict(prompt_learner=dict(
        type='DualCoOp', ctx_len=4, ctx_len_video=4, deep_visual=True)),
    'vidop': dict(prompt_learner=dict(type='ViDOP', ctx_len_video=4,
                                      deep_visual=True)),
    'vilt': dict(prompt_learner=dict(type='ViLT', ctx_len=2,
                                     prompt_depth=None)),
    'vita': dict(prompt_learner=dict(type='ViTA', ctx_len=4,
                                     num_video_tokens=4, num_heads=4)),
    'stt': dict(prompt_learner=dict(type='STT', ctx_len=4,
                                    num_video_tokens=4, num_heads=4)),
}


def _build(pretrained: str, method: str, class_texts: Sequence[str],
           pooling: str):
    cfg = dict(type='CLIPRecognizer', pretrained=pretrained,
               class_texts=class_texts, temporal_pooling=pooling)
    extra = {k: (dict(v) if isinstance(v, dict) else v)
             for k, v in METHODS[method].items()}
    learner = extra.get('prompt_learner')
    if learner is not None and 'prompt_depth' in learner:
        from hvlm.models.backbones.hf_pretrained import check_directory
        config = check_directory(pretrained)
        layers = [config.get(k, {}).get('num_hidden_layers')
                  for k in ('text_config', 'vision_config')]
        learner['prompt_depth'] = min(x for x in layers if x)
    if extra.get('classifier') == 'linear':
        extra['num_classes'] = len(class_texts)
    return MODELS.build(dict(cfg, **extra))


def benchmark_recognition(pretrained: str,
                          methods: Sequence[str] = tuple(METHODS),
                          num_classes: int = 101,
                          batch_size: int = 2,
                          views: int = 1,
                          frames: int = 8,
                          iters: int = 5,
                          warmup: int = 1,
                          pooling: str = 'mean',
                          threads: Optional[int] = None,
                          seed: int = 0) -> Dict[str, object]:
    """Median seconds of one training step (forward, loss, backward, an
    AdamW step on the trainable parameters) per method, measured in one run
    beside the linear probe on the same frozen features (the baseline).

    The methods run round-robin, one step each per round, in an order
    shuffled every round, so load changes on a shared machine hit all
    alike. ``texts_per_step`` counts the texts the text tower encoded in
    the last timed step: the class count for learned prompts (once for the
    whole class set, not per video or view), 0 for fixed features (cached)
    and the linear probe, classes x clips for STT.

    Args:
        pretrained (str): Local CLIP directory.
        methods (Sequence[str]): Keys of :data:`METHODS`.
        num_classes (int): Size of the class set.
        batch_size (int): Videos per step.
        views (int): Views per video.
        frames (int): Frames per view.
        iters (int): Timed rounds.
        warmup (int): Untimed rounds first.
        pooling (str): Temporal pooling of every method.
        threads (int, optional): ``torch.set_num_threads``.
        seed (int): Seed of weights and inputs.

    Returns:
        dict: ``seconds``, ``ratio_to_linear_probe``, ``texts_per_step``
        and the settings.
    """
    import hvlm.models  # noqa: F401
    from hvlm.structures import VideoDataSample
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f'unknown methods {unknown}; choose from '
                         f'{tuple(METHODS)}')
    if iters < 1 or warmup < 0:
        raise ValueError(f'iters={iters} must be >= 1, warmup={warmup} >= 0')
    if threads is not None:
        torch.set_num_threads(threads)
    methods = ['linear_probe'] + [m for m in methods if m != 'linear_probe']
    torch.manual_seed(seed)
    classes = [f'action number {i}' for i in range(num_classes)]
    models, optims, counts = {}, {}, {}
    for m in methods:
        model = _build(pretrained, m, classes, pooling).train()
        models[m] = model
        params = [p for p in model.parameters() if p.requires_grad]
        optims[m] = torch.optim.AdamW(params, lr=1e-4)
        counts[m] = []
        layer = model.text_encoder.model.text_model.encoder.layers[0]
        layer.register_forward_hook(
            lambda mod, args, out, m=m: counts[m].append(args[0].shape[0]))
    size = models['linear_probe'].image_encoder.image_size
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, 255, (batch_size, views, 3, frames, *size),
                           generator=g, dtype=torch.uint8)
    labels = torch.randint(0, num_classes, (batch_size, ), generator=g)

    def step(m: str) -> float:
        model = models[m]
        samples = []
        for y in labels:
            s = VideoDataSample()
            s.gt_label = y.reshape(1)
            samples.append(s)
        data = model.data_preprocessor(
            dict(inputs=list(inputs), data_samples=samples), training=True)
        counts[m].clear()
        start = time.perf_counter()
        losses = model(**data, mode='loss')
        optims[m].zero_grad()
        sum(losses.values()).backward()
        optims[m].step()
        return time.perf_counter() - start

    rng = random.Random(seed)
    times = {m: [] for m in methods}
    for r in range(warmup + iters):
        order = list(methods)
        rng.shuffle(order)
        for m in order:
            t = step(m)
            if r >= warmup:
                times[m].append(t)
    seconds = {m: statistics.median(ts) for m, ts in times.items()}
    base = seconds['linear_probe']
    return dict(
        seconds=seconds,
        ratio_to_linear_probe={m: s / base for m, s in seconds.items()},
        texts_per_step={m: sum(c) for m, c in counts.items()},
        pretrained=pretrained, num_classes=num_classes,
        batch_size=batch_size, views=views, frames=frames, iters=iters,
        threads=torch.get_num_threads())


def format_recognition_benchmark(result: Dict[str, object]) -> str:
    lines = [
        f'training step, {result["batch_size"]} videos x '
        f'{result["views"]} views x {result["frames"]} frames, '
        f'{result["num_classes"]} classes, {result["iters"]} rounds, '
        f'{result["threads"]} threads, CLIP {result["pretrained"]}',
        f'{"method":<22}{"ms":>10}{"x linear":>10}{"texts/step":>12}'
    ]
    for m, s in result['seconds'].items():
        lines.append(f'{m:<22}{1000 * s:>10.1f}'
                     f'{result["ratio_to_linear_probe"][m]:>10.2f}'
                     f'{result["texts_per_step"][m]:>12}')
    return '\n'.join(lines)
