"""Import every hvlm module so that all registries are filled."""
import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register hvlm's modules and (optionally) make ``hvlm`` the scope.

    Args:
        init_default_scope: Set mmengine's default scope to ``hvlm`` so that
            ``type='VideoDataset'`` resolves in hvlm's registries first. A
            different current scope is replaced by a new ``hvlm`` instance,
            with a warning.
    """
    import hvlm.datasets  # noqa: F401
    import hvlm.engine  # noqa: F401
    import hvlm.evaluation  # noqa: F401
    import hvlm.models  # noqa: F401

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None:
        DefaultScope.get_instance('hvlm', scope_name='hvlm')
    elif current.scope_name != 'hvlm':
        warnings.warn(f'The current default scope "{current.scope_name}" is '
                      'not "hvlm"; switching to a new "hvlm" scope.')
        stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S-%f')
        DefaultScope.get_instance(f'hvlm-{stamp}', scope_name='hvlm')
