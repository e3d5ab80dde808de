"""Config checks and rewrites applied before the Runner is built.

mmengine accepts a misspelled top-level key silently (``trian_cfg`` is just
an unused variable) and reports an unknown ``type`` as a bare KeyError that
does not say where in the config it came from. These checks name the key.
"""
import difflib
import inspect
import warnings
from typing import Iterator, List, Optional, Tuple

import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import Registry
from mmengine.runner import Runner

__all__ = [
    'ConfigError', 'check_config', 'iter_types', 'registered_names',
    'find_video_dataset', 'share_vocabulary'
]


class ConfigError(ValueError):
    """A config that names something that does not exist."""


# Keys the Runner reads, plus the ones OpenMMLab configs conventionally use.
RUNNER_KEYS = frozenset(
    set(inspect.signature(Runner.__init__).parameters) - {'self', 'cfg'}
    | {
        'runner_type', 'custom_imports', 'model_wrapper_cfg',
        'find_unused_parameters', 'compile', 'gpu_ids', 'strategy',
        # HVLMRunner's (hvlm.utils.checkpoint_fit)
        'load_from_allow_missing', 'load_from_allow_unexpected',
        'load_from_allow_shape_mismatch'
    })


def iter_types(node, path: str = '') -> Iterator[Tuple[str, str]]:
    """Yield ``(key path, type name)`` for every string ``type`` in a config.

    Class objects given as ``type`` are skipped: they need no lookup.
    """
    if isinstance(node, dict):
        type_name = node.get('type')
        if isinstance(type_name, str):
            yield f'{path}.type' if path else 'type', type_name
        for key, value in node.items():
            if key != 'type':
                yield from iter_types(value, f'{path}.{key}' if path else key)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from iter_types(value, f'{path}[{i}]')


def _all_registries() -> List[Registry]:
    from hvlm.registry import ALL_REGISTRIES
    found: List[Registry] = []
    for registry in ALL_REGISTRIES.values():
        while registry is not None and registry not in found:
            found.append(registry)
            registry = registry.parent
    return found


def registered_names() -> List[str]:
    """Every name registered in hvlm's registries and their mmengine parents
    (after importing the registries' locations)."""
    names = set()
    for registry in _all_registries():
        registry.import_from_location()
        names.update(registry.module_dict)
    return sorted(names)


def _lookup(name: str):
    """The class or function registered as ``name`` anywhere, or None."""
    for registry in _all_registries():
        try:
            found = registry.get(name)
        except (KeyError, ImportError, ModuleNotFoundError):
            continue
        if found is not None:
            return found
    return None


def _is_registered(name: str) -> bool:
    return _lookup(name) is not None


# Config subtrees whose keys are read by a builder rather than passed to the
# named class (optim wrapper constructors take paramwise_cfg, init_cfg is
# interpreted by mmengine's initialisers, DDP wrappers take torch's kwargs).
_ARGUMENT_CHECK_SKIP = ('optim_wrapper', 'model_wrapper_cfg', 'init_cfg')
# Keys read by a builder on the way (schedulers' build_iter_from_epoch).
_BUILDER_KEYS = frozenset({'type', '_scope_', 'convert_to_iter_based'})


def accepted_arguments(obj) -> Optional[set]:
    """Keyword arguments ``obj`` (a class or function) accepts, following
    ``**kwargs`` up the class hierarchy; None if anything goes."""
    targets = [c.__init__ for c in inspect.getmro(obj)
               if '__init__' in vars(c)] if inspect.isclass(obj) else [obj]
    names: set = set()
    for target in targets:
        try:
            params = inspect.signature(target).parameters.values()
        except (TypeError, ValueError):
            return None
        names.update(p.name for p in params
                     if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names - {'self'}
    return None


def _unknown_arguments(node, path: str = '') -> Iterator[str]:
    if isinstance(node, dict):
        if path.split('.')[-1].split('[')[0] in _ARGUMENT_CHECK_SKIP:
            return
        type_name = node.get('type')
        obj = _lookup(type_name) if isinstance(type_name, str) else None
        accepted = accepted_arguments(obj) if obj is not None else None
        if accepted is not None:
            for key in node:
                if key in _BUILDER_KEYS or key in accepted:
                    continue
                close = difflib.get_close_matches(key, accepted, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ''
                yield (f'  {path}.{key}: {type_name} has no argument '
                       f'{key!r}{hint}')
        for key, value in node.items():
            if key != 'type':
                yield from _unknown_arguments(value,
                                              f'{path}.{key}' if path else key)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _unknown_arguments(value, f'{path}[{i}]')


# Loop settings that must be positive integers; mmengine takes -1 or 0
# epochs without complaint and trains nothing.
_LOOP_COUNTS = {
    'train_cfg': {
        'max_epochs': 'the number of training epochs',
        'max_iters': 'the number of training iterations',
        'val_interval': 'validate every val_interval epochs or iterations',
    },
}
_DEFAULT_CONSTRUCTOR = 'DefaultOptimWrapperConstructor'
# Keys of an optim_wrapper that its constructor reads itself.
_CONSTRUCTOR_KEYS = frozenset({'type', '_scope_', 'constructor',
                               'paramwise_cfg'})


def _loop_count_problems(cfg: Config) -> Iterator[str]:
    for section, keys in _LOOP_COUNTS.items():
        loop = cfg.get(section)
        if not isinstance(loop, dict):
            continue
        for key, meaning in keys.items():
            if key not in loop:
                continue
            value = loop[key]
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 1:
                yield (f'  {section}.{key} = {value!r}: expected a positive '
                       f'integer ({meaning})')


def _schedule_warnings(cfg: Config) -> Iterator[str]:
    """Schedulers that end after training does (``--cfg-options
    train_cfg.max_epochs=5`` leaves a 30-epoch cosine schedule cut short,
    its learning rate still near the peak)."""
    loop = cfg.get('train_cfg')
    if not isinstance(loop, dict):
        return
    loop_type = loop.get('type')
    if loop_type == 'EpochBasedTrainLoop' or (loop_type is None
                                              and loop.get('by_epoch')):
        by_epoch, length_key = True, 'max_epochs'
    elif loop_type == 'IterBasedTrainLoop' or (
            loop_type is None and loop.get('by_epoch') is False):
        by_epoch, length_key = False, 'max_iters'
    else:
        return  # a custom loop: its length is its own business
    length = loop.get(length_key)
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        return  # not a length: an error of its own
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    for i, scheduler in enumerate(schedulers):
        if not isinstance(scheduler, dict) or \
                scheduler.get('by_epoch', True) != by_epoch:
            continue
        end = scheduler.get('end')
        if isinstance(end, bool) or not isinstance(end, int) or \
                end <= length:
            continue
        unit = 'epoch' if by_epoch else 'iteration'
        yield (f'param_scheduler[{i}] ({scheduler.get("type")}) ends at '
               f'{unit} {end} but train_cfg.{length_key} = {length}: the '
               f'schedule is cut off; set param_scheduler.{i}.end={length} '
               '(and its T_max to match, where it has one)')


def _unknown_keys(path: str, given, accepted: set,
                  owner: str) -> Iterator[str]:
    for key in given:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(map(repr, close))}?" \
                if close else ''
            yield f'  {path}.{key}: {owner} has no argument {key!r}{hint}'


def _optimizer_problems(path: str, optimizer) -> Iterator[str]:
    """Unknown or invalid arguments of one optimizer config.

    The arguments are matched against the optimizer's signature; then a
    ``torch.optim`` optimizer is built on a single dummy parameter, so that
    values torch rejects (``lr=-1``, ``betas=(1.5, 0.9)``) fail here rather
    than after the datasets and the model are built. Other optimizers may
    need more than a parameter to start (``ZeroRedundancyOptimizer`` a
    process group), so only their argument names are checked.
    """
    if not isinstance(optimizer, dict):
        return
    type_name = optimizer.get('type')
    obj = _lookup(type_name) if isinstance(type_name, str) else type_name
    if not callable(obj):
        return  # no type, or an unknown one: reported with the types
    name = getattr(obj, '__name__', str(type_name))
    kwargs = {k: v for k, v in optimizer.items() if k not in _BUILDER_KEYS}
    # An optimizer's **kwargs usually go to the optimizer it wraps
    # (ZeroRedundancyOptimizer), not up its class hierarchy.
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return
    accepted = None if any(p.kind == p.VAR_KEYWORD for p in params) else {
        p.name for p in params if p.kind != p.VAR_POSITIONAL}
    if accepted is not None:
        # the constructor passes the model's parameters itself
        bad = list(_unknown_keys(path, kwargs, accepted - {'params'},
                                 name))
        if bad:
            yield from bad
            return
    if not getattr(obj, '__module__', '').startswith('torch.optim.'):
        return
    try:
        obj([torch.nn.Parameter(torch.zeros(1))], **kwargs)
    except (TypeError, ValueError) as err:
        yield f'  {path}: {name} rejects its arguments: {err}'


def _optim_wrapper_problems(cfg: Config) -> Iterator[str]:
    """Arguments of ``optim_wrapper`` (or of each wrapper of a
    ``MultiOptimWrapperConstructor`` config) and of its optimizer, where
    the default constructor passes them on unchanged."""
    root = cfg.get('optim_wrapper')
    if not isinstance(root, dict):
        return
    if 'optimizer' in root:
        if root.get('constructor', _DEFAULT_CONSTRUCTOR) != \
                _DEFAULT_CONSTRUCTOR:
            return  # a custom constructor reads the keys its own way
        wrappers = {'optim_wrapper': root}
    else:  # MultiOptimWrapperConstructor: one default-built wrapper each
        wrappers = {
            f'optim_wrapper.{key}': value
            for key, value in root.items()
            if isinstance(value, dict) and 'optimizer' in value
        }
    for path, wrapper in wrappers.items():
        type_name = wrapper.get('type', 'OptimWrapper')
        obj = _lookup(type_name) if isinstance(type_name, str) else type_name
        accepted = accepted_arguments(obj) if callable(obj) else None
        if accepted is not None:
            yield from _unknown_keys(
                path, [k for k in wrapper if k not in _CONSTRUCTOR_KEYS],
                accepted, getattr(obj, '__name__', str(type_name)))
        yield from _optimizer_problems(f'{path}.optimizer',
                                       wrapper['optimizer'])


def check_config(cfg: Config) -> None:
    """Warn about misspelled top-level keys; raise on unknown types,
    unknown arguments and impossible values.

    Raises:
        ConfigError: a ``type`` that no registry knows, naming its config key
            and the closest registered names; or a key that the named class
            does not accept, naming its config path and the closest argument;
            or a loop length that is not a positive integer, or optimizer
            arguments that the optimizer rejects.
    """
    import mmcv.cnn  # noqa: F401  (registers norm/conv/activation layers)

    for key in cfg.keys():
        if key in RUNNER_KEYS or key.startswith('_'):
            continue
        close = difflib.get_close_matches(key, RUNNER_KEYS, n=1, cutoff=0.8)
        if close:
            warnings.warn(
                f'config key "{key}" is not used by the runner; did you mean '
                f'"{close[0]}"?',
                stacklevel=2)

    for message in _schedule_warnings(cfg):
        warnings.warn(message, stacklevel=2)

    unknown = [(path, name) for path, name in iter_types(cfg._cfg_dict)
               if not _is_registered(name)]
    if not unknown:
        problems = list(_unknown_arguments(cfg._cfg_dict))
        problems += _loop_count_problems(cfg)
        problems += _optim_wrapper_problems(cfg)
        if len(problems) == 1:
            raise ConfigError('invalid config: ' + problems[0].strip())
        if problems:
            raise ConfigError('invalid config:\n' + '\n'.join(problems))
        return
    names = registered_names()
    lines = []
    for path, name in unknown:
        short = name.split('.')[-1]
        close = difflib.get_close_matches(short, names, n=3, cutoff=0.6)
        hint = f'; did you mean {", ".join(close)}?' if close else ''
        lines.append(f'  {path} = {name!r} is not a registered type{hint}')
    raise ConfigError('unknown type(s) in the config:\n' + '\n'.join(lines) +
                      '\nA type from your own package needs '
                      "custom_imports=dict(imports=['your.module']).")


def find_video_dataset(dataset_cfg) -> ConfigDict:
    """The innermost dataset config (through wrappers such as
    ``RepeatDataset(dataset=...)``), or None."""
    while isinstance(dataset_cfg, dict) and 'data_root' not in dataset_cfg:
        dataset_cfg = dataset_cfg.get('dataset')
    return dataset_cfg if isinstance(dataset_cfg, dict) else None


def share_vocabulary(cfg: Config) -> None:
    """Make validation and test datasets use the training split's labels.

    Label, answer and word indices must mean the same in every split, so
    val/test datasets without an explicit ``vocab_root`` or ``metainfo``
    build their vocabularies from the training dataset's ``data_root``. Done
    on the config, after ``--cfg-options``, so pointing the three splits at
    another directory needs nothing else. ``VideoQAMetric`` entries without
    a ``prior_root`` get the training ``data_root`` too, so they report the
    training-answer prior (``qa/train_prior_top1``).
    """
    train = find_video_dataset(
        (cfg.get('train_dataloader') or {}).get('dataset'))
    if train is None:
        return
    vocab_root = train.get('vocab_root') or train['data_root']
    for key in ('val_dataloader', 'test_dataloader'):
        dataset = find_video_dataset((cfg.get(key) or {}).get('dataset'))
        if (dataset is not None and dataset.get('vocab_root') is None
                and not (dataset.get('metainfo') or {}).get('classes')):
            dataset['vocab_root'] = vocab_root
    # VideoQAMetric's blind baseline from the training answers
    for key in ('val_evaluator', 'test_evaluator'):
        metrics = cfg.get(key) or []
        for metric in metrics if isinstance(metrics, list) else [metrics]:
            if metric.get('type') == 'VideoQAMetric' and \
                    metric.get('prior_root') is None:
                metric['prior_root'] = train['data_root']
