"""Config checks and rewrites applied before the Runner is built.

mmengine accepts a misspelled top-level key silently (``trian_cfg`` is just
an unused variable) and reports an unknown ``type`` as a bare KeyError that
does not say where in the config it came from. These checks name the key.
"""
import difflib
import inspect
import warnings
from typing import Iterator, List, Optional, Tuple

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
        'load_from_allow_missing', 'load_from_allow_unexpected'
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


def check_config(cfg: Config) -> None:
    """Warn about misspelled top-level keys; raise on unknown types and
    unknown arguments.

    Raises:
        ConfigError: a ``type`` that no registry knows, naming its config key
            and the closest registered names; or a key that the named class
            does not accept, naming its config path and the closest argument.
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

    unknown = [(path, name) for path, name in iter_types(cfg._cfg_dict)
               if not _is_registered(name)]
    if not unknown:
        bad_args = list(_unknown_arguments(cfg._cfg_dict))
        if bad_args:
            raise ConfigError('unknown argument(s) in the config:\n' +
                              '\n'.join(bad_args))
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
