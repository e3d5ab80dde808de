"""Every extension point of hvlm, one line each.

The first block are children of mmengine's root registries: they inherit
everything mmengine registers (hooks, optimizers, schedulers, samplers...) and
add hvlm's own under the scope ``hvlm``, which configs select with
``default_scope = 'hvlm'``.

The second block are hvlm's four component families. They are *standalone*
registries with ``scope='hvlm'`` rather than children of :data:`MODELS`: a
child of an ``hvlm``-scoped registry inherits that scope and is shadowed once
the Runner sets ``default_scope='hvlm'`` (a build then searches MODELS only).
A third party extends a family with ``@ATTENTIONS.register_module()`` and a
``custom_imports`` line in its config.

``locations`` are imported lazily on the first lookup;
``tests/test_registry.py`` imports each of them so that a typo fails in CI.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import \
    RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS',
    'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS',
    'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'TASK_UTILS', 'METRICS',
    'EVALUATOR', 'VISUALIZERS', 'VISBACKENDS', 'FUNCTIONS', 'ATTENTIONS',
    'ADAPTERS', 'HEADS', 'MERGERS', 'ALL_REGISTRIES'
]

# ---------------------------------------------------------------------------
# Training loop
# ---------------------------------------------------------------------------
# Runners (HVLMRunner: mmengine's Runner plus CPU-distributed, vocabulary
# sharing and config checks).
RUNNERS = Registry(
    'runner', parent=MMENGINE_RUNNERS, locations=['hvlm.engine.runner'])
# Constructors that build runners.
RUNNER_CONSTRUCTORS = Registry(
    'runner constructor',
    parent=MMENGINE_RUNNER_CONSTRUCTORS,
    locations=['hvlm.engine.runner'])
# Train, validation and test loops.
LOOPS = Registry(
    'loop', parent=MMENGINE_LOOPS, locations=['hvlm.engine.runner'])
# Hooks run around the loop (RNG state, skipped videos, progress bars).
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['hvlm.engine.hooks'])
# Turn the raw training log into the scalars that are printed and plotted.
LOG_PROCESSORS = Registry(
    'log processor',
    parent=MMENGINE_LOG_PROCESSORS,
    locations=['hvlm.engine'])

# ---------------------------------------------------------------------------
# Optimisation
# ---------------------------------------------------------------------------
# Optimizers (torch's are inherited from mmengine).
OPTIMIZERS = Registry(
    'optimizer', parent=MMENGINE_OPTIMIZERS, locations=['hvlm.engine.optim'])
# Optimizer wrappers (AmpOptimWrapper: bf16 autocast on CPU, fp16 on GPU).
OPTIM_WRAPPERS = Registry(
    'optim wrapper',
    parent=MMENGINE_OPTIM_WRAPPERS,
    locations=['hvlm.engine.optim'])
# Build optimizer wrappers with per-parameter settings.
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['hvlm.engine.optim'])
# Learning-rate and momentum schedules.
PARAM_SCHEDULERS = Registry(
    'parameter scheduler',
    parent=MMENGINE_PARAM_SCHEDULERS,
    locations=['hvlm.engine.optim'])

# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
# Datasets (VideoDataset for the documented directory layout).
DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, locations=['hvlm.datasets'])
# Samplers and batch samplers.
DATA_SAMPLERS = Registry(
    'data sampler',
    parent=MMENGINE_DATA_SAMPLERS,
    locations=['hvlm.datasets'])
# Pipeline steps: open, sample, decode, resize/crop/flip, pack.
TRANSFORMS = Registry(
    'transform',
    parent=MMENGINE_TRANSFORMS,
    locations=['hvlm.datasets.transforms'])

# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------
# Whole models, data preprocessors, backbones and losses.
MODELS = Registry('model', parent=MMENGINE_MODELS, locations=['hvlm.models'])
# Wrappers such as MMDistributedDataParallel.
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    locations=['hvlm.models'])
# Weight initialisers used by ``init_cfg``.
WEIGHT_INITIALIZERS = Registry(
    'weight initializer',
    parent=MMENGINE_WEIGHT_INITIALIZERS,
    locations=['hvlm.models'])
# Small helpers used by models (samplers, assigners, tokenizers).
TASK_UTILS = Registry(
    'task util', parent=MMENGINE_TASK_UTILS, locations=['hvlm.models'])

# ---------------------------------------------------------------------------
# Evaluation and visualisation
# ---------------------------------------------------------------------------
# Metrics computed over a whole validation or test set.
METRICS = Registry(
    'metric', parent=MMENGINE_METRICS, locations=['hvlm.evaluation'])
# Evaluators that run a list of metrics.
EVALUATOR = Registry(
    'evaluator', parent=MMENGINE_EVALUATOR, locations=['hvlm.evaluation'])
# Visualizers draw predictions; vis backends store scalars (TensorBoard...).
VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS)
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS)
# Plain functions named in configs (collate_fn, worker_init_fn).
FUNCTIONS = Registry(
    'function', parent=MMENGINE_FUNCTIONS, locations=['hvlm.datasets'])

# ---------------------------------------------------------------------------
# The four component families (standalone, see the module docstring)
# ---------------------------------------------------------------------------
# Token mixers of the encoder blocks; ``model.backbone.attention`` picks one.
ATTENTIONS = Registry(
    'attention', scope='hvlm', locations=['hvlm.models.attention'])
# Parameter-efficient adapters (LoRA) injected into named linears.
ADAPTERS = Registry(
    'adapter', scope='hvlm', locations=['hvlm.models.adapters'])
# Task heads with ``loss`` / ``predict``; MultiTaskHead runs several.
HEADS = Registry('head', scope='hvlm', locations=['hvlm.models.heads'])
# Token mergers between encoder stages; ``model.backbone.merger`` picks one.
MERGERS = Registry('merger', scope='hvlm', locations=['hvlm.models.mergers'])

ALL_REGISTRIES = {
    name: obj
    for name, obj in globals().items()
    if isinstance(obj, Registry) and not name.startswith('MMENGINE_')
}
