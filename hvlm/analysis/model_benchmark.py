"""Speed and peak memory of a config's whole model, against the same model
with ``FullAttention`` and no token merging, measured in the same run
(``tools/analysis_tools/benchmark.py`` is the CLI).

Settings (the backbone of ``cfg.model`` changed, nothing else):

* ``baseline``: ``attention=dict(type='FullAttention')``, ``merger=None``;
* ``model``: the config as it is;
* ``model_with_cp``: the config with ``with_cp=True`` (every block
  recomputed in the backward pass, non-reentrant);
* ``model_amp`` (speed only): the config's model under mixed precision,
  as ``--amp`` would run it if it did not check the CPU first: an
  ``AmpOptimWrapper`` for training and mmengine's ``autocast`` for
  inference (bfloat16 on CPU). Its ``speedup_vs_model`` is what ``--amp``
  gains or loses on this machine.

Everything a training run has is real: batches decoded by decord from the
config's videos through its pipeline, collated by ``HVLMRunner``'s
``build_dataloader``; the model's tokenizer trained by ``TokenizerHook`` on
the training annotations; the optimizer wrapper of ``cfg.optim_wrapper``
(AdamW, gradient clipping). A training step is ``model.train_step``:
preprocessing, forward, loss, backward, clipping, optimizer step. An
inference step is ``model.test_step`` under ``torch.no_grad``. A batch is
loaded once and reused, so loading is not timed (see
``benchmark_dataloader.py`` for that).

Speed (:func:`benchmark_speed`) runs every setting in this process,
round-robin, one step each per round, so a load change on a shared machine
hits all of them alike.

Memory (:func:`benchmark_memory`) runs each (setting, sequence length) in
a fresh process, like the attention benchmark, so one case's allocator
state cannot hide or inflate another's peak, and a case that passes the
memory or time cap is killed and recorded instead of taking the machine
down. A sequence length is the number of tokens one clip feeds the encoder,
``(T / pt) * (H / ph) * (W / pw)`` for tubelets ``(pt, ph, pw)``; the clip
grows in time up to ``max_frames`` frames, then in space
(:func:`clip_for_length`), and each video is one such clip. Peak memory:

* ``peak_mb``: the high-water mark during the measured training steps
  above what was resident just before them (weights, optimizer state, the
  batch): activations, gradients and temporaries. CPU: ``VmHWM`` reset
  through ``/proc/self/clear_refs``, with glibc returning every allocation
  above 64 KiB to the system on free (``MALLOC_MMAP_THRESHOLD_``), as in
  ``hvlm.analysis.attention_benchmark``; CUDA:
  ``torch.cuda.max_memory_allocated``.
* ``state_mb``: parameters plus optimizer state, counted from the tensors.
* ``total_mb = peak_mb + state_mb``: what a training step needs.
"""
import contextlib
import copy
import json
import logging
import resource
import sys
import time
import warnings
from types import SimpleNamespace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from hvlm.analysis.attention_benchmark import _predicted_mb
from hvlm.utils.benchmark_process import (peak_since, reset_peak,
                                          run_module_in_subprocess)

SETTINGS = ('baseline', 'model', 'model_with_cp', 'model_amp')
BASELINE = 'baseline'


# ----------------------------------------------------------------------
# Configs of the settings and of long clips
# ----------------------------------------------------------------------
def setting_model_cfg(model_cfg: dict, setting: str) -> dict:
    """``model_cfg`` for ``setting`` (one of :data:`SETTINGS`)."""
    if setting not in SETTINGS:
        raise ValueError(f'setting={setting!r} is not one of {SETTINGS}')
    cfg = copy.deepcopy(dict(model_cfg))
    backbone = dict(cfg.get('backbone') or {})
    if backbone.get('type') != 'HierarchicalVideoEncoder':
        raise ValueError(
            f"model.backbone.type={backbone.get('type')!r}: the benchmark "
            'swaps attention, merger and with_cp of a '
            'HierarchicalVideoEncoder')
    if setting == BASELINE:
        backbone.update(attention=dict(type='FullAttention'), merger=None)
    elif setting == 'model_with_cp':
        backbone['with_cp'] = True
    cfg['backbone'] = backbone
    return cfg


def clip_for_length(seq_len: int, patch_size: Sequence[int],
                    max_frames: int) -> Tuple[int, int, int]:
    """The clip ``(T, H, W)`` whose tubelet grid has exactly ``seq_len``
    tokens: as many frames as possible up to ``max_frames`` (``T / pt``
    divides ``seq_len``), then the most nearly square grid of the rest.

    Example: 1024 tokens of (2, 8, 8) tubelets with 32 frames at most is
    ``(32, 64, 64)``; 2048 is ``(32, 64, 128)``.
    """
    pt, ph, pw = patch_size
    if seq_len < 1 or max_frames < pt:
        raise ValueError(f'seq_len={seq_len} must be >= 1 and max_frames='
                         f'{max_frames} at least the tubelet length {pt}')
    t = next(t for t in range(max_frames // pt, 0, -1) if seq_len % t == 0)
    spatial = seq_len // t
    h = next(h for h in range(int(spatial**0.5), 0, -1) if spatial % h == 0)
    return t * pt, h * ph, spatial // h * pw


def long_clip_pipeline(pipeline: Sequence[dict],
                       clip: Sequence[int]) -> List[dict]:
    """``pipeline`` changed to give one clip of ``clip = (T, H, W)`` per
    video: ``SampleFrames`` takes ``clip_len=T, num_clips=1`` and a
    ``Resize`` to exactly ``H x W`` runs before ``FormatShape``."""
    T, H, W = clip
    out, found = [], set()
    for step in pipeline:
        step = dict(step)
        if step.get('type') == 'SampleFrames':
            step.update(clip_len=T, num_clips=1)
            found.add('SampleFrames')
        if step.get('type') == 'FormatShape':
            out.append(dict(type='Resize', scale=(W, H), keep_ratio=False))
            found.add('FormatShape')
        out.append(step)
    missing = {'SampleFrames', 'FormatShape'} - found
    if missing:
        raise ValueError(
            f'train_dataloader.dataset.pipeline has no {sorted(missing)}: '
            'the memory benchmark sets the clip length there and resizes '
            'before FormatShape')
    return out


# ----------------------------------------------------------------------
# One setting, ready to step
# ----------------------------------------------------------------------
def _first_batch(loader_cfg: dict, batch_size: Optional[int],
                 seed: int) -> Tuple[dict, object]:
    """The first batch of a loader built as a run builds it, and the
    loader."""
    from hvlm.engine.runner import HVLMRunner
    loader_cfg = copy.deepcopy(dict(loader_cfg))
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader_cfg.pop('prefetch_factor', None)
    if batch_size is not None:
        loader_cfg['batch_size'] = batch_size
    loader = HVLMRunner.build_dataloader(loader_cfg, seed=seed)
    batch = next(iter(loader))
    if not batch['inputs']:
        raise ValueError('the first batch is empty: every video of it was '
                         'skipped as unreadable (see the warnings above)')
    return batch, loader


@contextlib.contextmanager
def _quiet_mmengine():
    """mmengine logs a line per parameter on ``init_weights`` and per
    parameter-group setting when building an optimizer: warnings only."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class Subject:
    """A model of one setting with its optimizer wrapper and real batches.

    Args:
        cfg (Config): The full config (model, data, optim_wrapper).
        setting (str): One of :data:`SETTINGS`.
        checkpoint (str, optional): Loaded with hvlm's safe loader; the
            baseline takes what matches its modules (``strict=False``).
        device (str): ``'cpu'`` or ``'cuda'``.
        batch_size (int, optional): Overrides the loaders' batch size.
        infer (bool): Also load a test batch (``test_dataloader``).
        seed (int): Weights and sampler seed.
    """

    def __init__(self,
                 cfg: Config,
                 setting: str,
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 batch_size: Optional[int] = None,
                 infer: bool = False,
                 seed: int = 0) -> None:
        from mmengine.optim import build_optim_wrapper
        from mmengine.runner import load_checkpoint

        from hvlm.engine.hooks import TokenizerHook
        from hvlm.registry import MODELS

        self.setting = setting
        self.device = device
        torch.manual_seed(seed)
        model = MODELS.build(setting_model_cfg(cfg.model, setting))
        with _quiet_mmengine():
            model.init_weights()
        if checkpoint:
            load_checkpoint(model, checkpoint, map_location='cpu',
                            strict=setting != BASELINE, logger='silent')
        self.model = model.to(device)
        self.amp = setting == 'model_amp'
        optim_wrapper = copy.deepcopy(cfg.optim_wrapper)
        if self.amp:
            optim_wrapper['type'] = 'AmpOptimWrapper'
        with _quiet_mmengine(), warnings.catch_warnings():
            # the slow-bfloat16 warning: measuring that is the point here
            warnings.simplefilter('ignore')
            self.optim_wrapper = build_optim_wrapper(self.model,
                                                     optim_wrapper)
        self.train_batch, loader = _first_batch(cfg.train_dataloader,
                                                batch_size, seed)
        # The hook's own code; it reads only these two runner attributes.
        TokenizerHook().before_train(
            SimpleNamespace(model=self.model, train_dataloader=loader))
        self.test_batch = None
        if infer:
            self.test_batch, _ = _first_batch(cfg.test_dataloader,
                                              batch_size, seed)

    @staticmethod
    def clips(batch: dict) -> int:
        return sum(int(t.shape[0]) for t in batch['inputs'])

    def tokens_per_clip(self, batch: dict) -> int:
        """Tokens one clip of ``batch`` feeds the encoder."""
        _, _, T, H, W = batch['inputs'][0].shape
        pt, ph, pw = self.model.backbone.patch_embed.patch_size
        return (T // pt) * (H // ph) * (W // pw)

    def _sync(self) -> None:
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()

    def train_step(self) -> float:
        """One training step; its seconds."""
        self.model.train()
        start = time.perf_counter()
        self.model.train_step(self.train_batch, self.optim_wrapper)
        self._sync()
        return time.perf_counter() - start

    def infer_step(self) -> float:
        """One inference step (``predict``, no gradients); its seconds."""
        from mmengine.runner.amp import autocast
        self.model.eval()
        start = time.perf_counter()
        with torch.no_grad(), autocast(enabled=self.amp):
            self.model.test_step(self.test_batch)
        self._sync()
        return time.perf_counter() - start

    def state_mb(self) -> float:
        """Parameters plus optimizer state, in MB."""
        tensors = list(self.model.parameters()) + [
            v for state in self.optim_wrapper.optimizer.state.values()
            for v in state.values() if isinstance(v, torch.Tensor)
        ]
        return sum(t.numel() * t.element_size() for t in tensors) / 2**20


# ----------------------------------------------------------------------
# Speed
# ----------------------------------------------------------------------
def _latency_row(setting: str, mode: str, seconds: List[float], clips: int,
                 tokens: int) -> Dict[str, object]:
    ms = np.asarray(seconds) * 1e3
    median = float(np.median(ms))
    return dict(
        setting=setting, mode=mode, clips=clips, tokens_per_clip=tokens,
        latency_ms=median, p90_ms=float(np.percentile(ms, 90)),
        clips_per_s=clips / median * 1e3, iterations=len(seconds))


def benchmark_speed(cfg: Config,
                    settings: Sequence[str] = (BASELINE, 'model'),
                    checkpoint: Optional[str] = None,
                    num_iterations: int = 10,
                    warmup: int = 2,
                    batch_size: Optional[int] = None,
                    device: str = 'cpu',
                    log: Optional[Callable[[str], None]] = None
                    ) -> Dict[str, object]:
    """Training and inference latency (median and 90th percentile) and
    clips per second of every setting; ``speedup_vs_baseline`` is the
    baseline's median latency over the setting's, same mode, same run.
    ``model_with_cp`` is timed in training only: checkpointing does
    nothing without gradients.
    """
    if num_iterations < 1 or warmup < 0:
        raise ValueError(f'num_iterations={num_iterations} must be >= 1 and '
                         f'warmup={warmup} >= 0')
    settings = [BASELINE] + [s for s in settings if s != BASELINE]
    subjects = {
        s: Subject(cfg, s, checkpoint, device, batch_size, infer=True)
        for s in settings
    }
    rows = []
    for mode in ('train', 'infer'):
        names = [s for s in settings
                 if mode == 'train' or s != 'model_with_cp']
        seconds: Dict[str, List[float]] = {s: [] for s in names}
        for i in range(warmup + num_iterations):
            for name in names:
                subject = subjects[name]
                took = subject.train_step() if mode == 'train' else \
                    subject.infer_step()
                if i >= warmup:
                    seconds[name].append(took)
        for name in names:
            subject = subjects[name]
            batch = subject.train_batch if mode == 'train' else \
                subject.test_batch
            row = _latency_row(name, mode, seconds[name],
                               subject.clips(batch),
                               subject.tokens_per_clip(batch))
            base = next((r for r in rows if r['mode'] == mode
                         and r['setting'] == BASELINE), row)
            row['speedup_vs_baseline'] = base['latency_ms'] / \
                row['latency_ms']
            model = next((r for r in rows if r['mode'] == mode
                          and r['setting'] == 'model'), None)
            if name == 'model_amp' and model is not None:
                row['speedup_vs_model'] = model['latency_ms'] / \
                    row['latency_ms']
            rows.append(row)
            if log is not None:
                log(format_speed_row(row))
    return dict(rows=rows, num_iterations=num_iterations, warmup=warmup,
                device=device, threads=torch.get_num_threads())


_SPEED_COLUMNS = (('setting', 14), ('mode', 6), ('clips', 6),
                  ('tokens_per_clip', 16), ('latency_ms', 11),
                  ('p90_ms', 9), ('clips_per_s', 12),
                  ('speedup_vs_baseline', 20), ('speedup_vs_model', 17))


def _cells(row: Dict[str, object], columns) -> str:
    cells = []
    for key, width in columns:
        value = row.get(key)
        if isinstance(value, float):
            value = f'{value:.3g}' if 'vs' in key or 'saving' in key \
                else f'{value:.1f}'
        cells.append(f'{"-" if value is None else value!s:>{width}}')
    return ' '.join(cells)


def format_speed_row(row: Dict[str, object]) -> str:
    return _cells(row, _SPEED_COLUMNS)


def format_speed(result: Dict[str, object]) -> str:
    header = ' '.join(f'{k:>{w}}' for k, w in _SPEED_COLUMNS)
    return '\n'.join([header] + [format_speed_row(r)
                                 for r in result['rows']])


# ----------------------------------------------------------------------
# Memory: one case per process
# ----------------------------------------------------------------------
def run_memory_case(config_file: str,
                    setting: str,
                    seq_len: int,
                    *,
                    max_frames: int = 32,
                    batch_size: int = 1,
                    checkpoint: Optional[str] = None,
                    device: str = 'cpu',
                    num_iterations: int = 2,
                    warmup: int = 1) -> Dict[str, object]:
    """Peak memory and step time of training steps at ``seq_len`` tokens
    per clip, in *this* process (see the module docstring).

    Returns:
        dict: ``clip``, ``tokens_per_clip``, ``step_ms`` (median),
        ``peak_mb``, ``state_mb``, ``total_mb``, ``memory_method``.
    """
    from hvlm.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(config_file)
    backbone = cfg.model.backbone
    clip = clip_for_length(seq_len, backbone.get('patch_size', (2, 8, 8)),
                           max_frames)
    dataset = cfg.train_dataloader.dataset
    dataset.pipeline = long_clip_pipeline(dataset.pipeline, clip)
    subject = Subject(cfg, setting, checkpoint, device, batch_size)
    tokens = subject.tokens_per_clip(subject.train_batch)
    if tokens != seq_len:
        raise RuntimeError(f'clip {clip} gave {tokens} tokens per clip, '
                           f'expected {seq_len}')
    for _ in range(warmup):  # allocates the optimizer state
        subject.train_step()
    base, method = reset_peak(device)
    seconds = [subject.train_step() for _ in range(num_iterations)]
    peak = peak_since(device, base)
    state = subject.state_mb()
    return dict(
        clip=list(clip),
        clips=subject.clips(subject.train_batch),
        tokens_per_clip=tokens,
        step_ms=float(np.median(seconds)) * 1e3,
        peak_mb=peak,
        state_mb=state,
        total_mb=peak + state,
        memory_method=method)


def run_memory_case_in_subprocess(spec: dict,
                                  mem_cap_mb: Optional[float] = None,
                                  timeout_s: Optional[float] = None,
                                  poll_s: float = 0.1) -> Dict[str, object]:
    """:func:`run_memory_case` (``spec`` its keyword arguments) in a fresh
    interpreter, killed when its resident set passes ``mem_cap_mb`` or it
    runs longer than ``timeout_s``.

    Returns:
        dict: the case's result plus ``status`` (``'ok'``, ``'skipped'`` or
        ``'error'``) and ``reason``.
    """
    return run_module_in_subprocess(
        'hvlm.analysis.model_benchmark', spec, mem_cap_mb=mem_cap_mb,
        timeout_s=timeout_s, poll_s=poll_s)


def sequence_lengths(max_len: int, start: int = 1024) -> List[int]:
    """``start, 2 * start, ...`` up to ``max_len``, and ``max_len``."""
    if max_len < 1:
        raise ValueError(f'max_len={max_len} must be >= 1')
    lengths = []
    length = min(start, max_len)
    while length < max_len:
        lengths.append(length)
        length *= 2
    return lengths + [max_len]


def available_memory_mb() -> Optional[float]:
    """``MemAvailable`` of ``/proc/meminfo`` in MB (None elsewhere)."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def benchmark_memory(config_file: str,
                     seq_lens: Sequence[int],
                     settings: Sequence[str] = (BASELINE, 'model'),
                     *,
                     mem_cap_mb: Optional[float] = None,
                     timeout_s: Optional[float] = None,
                     log: Optional[Callable[[str], None]] = None,
                     run_case: Callable = run_memory_case_in_subprocess,
                     **case_kwargs) -> List[Dict[str, object]]:
    """Every setting at every length, the baseline first at each.

    A case predicted (power law through the setting's two largest
    measured lengths) to need more than ``mem_cap_mb`` is skipped without
    running; after a skipped or failed case, longer lengths of that setting
    are skipped too.

    Args:
        config_file (str): A config file (the resolved config, dumped).
        seq_lens (Sequence[int]): Tokens per clip.
        settings (Sequence[str]): Of :data:`SETTINGS`; the baseline is
            added.
        mem_cap_mb (float, optional): Resident-memory cap of a case.
        timeout_s (float, optional): Time cap of a case.
        log (callable, optional): Gets each row as a line.
        run_case (callable): Runs one case (the subprocess runner).
        **case_kwargs: To :func:`run_memory_case`.

    Returns:
        list[dict]: Rows with ``setting``, ``seq_len``, ``status``,
        ``reason``, the case's figures, ``time_vs_baseline`` and
        ``peak_vs_baseline`` / ``total_vs_baseline``; ``model_with_cp``
        rows also ``cp_peak_saving``, ``cp_total_saving`` (1 - with / without
        checkpointing) and ``cp_time_cost`` (with / without).
    """
    settings = [BASELINE] + [s for s in SETTINGS
                             if s in settings and s != BASELINE]
    measured = {s: [] for s in settings}
    state_mb = {s: 0. for s in settings}
    stopped: Dict[str, str] = {}
    rows = []
    for seq_len in sorted(set(seq_lens)):
        done: Dict[str, Dict[str, object]] = {}
        for setting in settings:
            row = dict(setting=setting, seq_len=seq_len)
            predicted = _predicted_mb(measured[setting], seq_len)
            state = state_mb[setting]
            if setting in stopped:
                row.update(status='skipped', reason=stopped[setting])
            elif (mem_cap_mb is not None and predicted is not None
                  and predicted + state > mem_cap_mb):
                row.update(status='skipped',
                           reason=f'predicted {predicted + state:.0f} MB > '
                           f'memory cap {mem_cap_mb:.0f} MB')
            else:
                spec = dict(case_kwargs, config_file=config_file,
                            setting=setting, seq_len=seq_len)
                row.update(run_case(spec, mem_cap_mb=mem_cap_mb,
                                    timeout_s=timeout_s))
            if row['status'] == 'ok':
                measured[setting].append((seq_len, row['peak_mb']))
                state_mb[setting] = row['state_mb']
                done[setting] = row
                _add_ratios(row, done)
            else:
                stopped.setdefault(
                    setting, f'{row["status"]} at {seq_len} tokens')
            rows.append(row)
            if log is not None:
                log(format_memory_row(row))
    return rows


def _add_ratios(row: Dict[str, object],
                done: Dict[str, Dict[str, object]]) -> None:
    base = done.get(BASELINE)
    if base is not None and row['setting'] != BASELINE:
        row['time_vs_baseline'] = row['step_ms'] / base['step_ms']
        row['peak_vs_baseline'] = row['peak_mb'] / max(base['peak_mb'], 1e-6)
        row['total_vs_baseline'] = row['total_mb'] / base['total_mb']
    plain = done.get('model')
    if row['setting'] == 'model_with_cp' and plain is not None:
        row['cp_peak_saving'] = 1 - row['peak_mb'] / max(
            plain['peak_mb'], 1e-6)
        row['cp_total_saving'] = 1 - row['total_mb'] / plain['total_mb']
        row['cp_time_cost'] = row['step_ms'] / plain['step_ms']


_MEMORY_COLUMNS = (('setting', 14), ('seq_len', 8), ('clip', 14),
                   ('step_ms', 9), ('peak_mb', 9), ('total_mb', 9),
                   ('time_vs_baseline', 17), ('peak_vs_baseline', 17),
                   ('total_vs_baseline', 18))


def format_memory_row(row: Dict[str, object]) -> str:
    row = dict(row)
    if row.get('clip'):
        row['clip'] = 'x'.join(str(v) for v in row['clip'])
    line = _cells(row, _MEMORY_COLUMNS)
    if 'cp_total_saving' in row:
        line += (f"  with_cp vs model: peak -{row['cp_peak_saving']:.0%}, "
                 f"total -{row['cp_total_saving']:.0%}, time "
                 f"x{row['cp_time_cost']:.2f}")
    if row.get('reason'):
        line += f"  {row['status']}: {row['reason']}"
    return line


def format_memory(rows: List[Dict[str, object]]) -> str:
    header = ' '.join(f'{k:>{w}}' for k, w in _MEMORY_COLUMNS)
    return '\n'.join([header] + [format_memory_row(r) for r in rows])


def _main() -> None:
    """Child-process entry: one memory case, its result as JSON."""
    spec = json.loads(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    threads = spec.pop('threads', None)
    if threads:
        torch.set_num_threads(threads)
    print(json.dumps(run_memory_case(**spec)))


if __name__ == '__main__':
    _main()
