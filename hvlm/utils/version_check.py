"""Warn, never assert, when mmengine or mmcv fall outside the tested range.

MMAction2 asserts the versions at import time, which breaks every user on the
day a new release comes out. A warning keeps hvlm importable and still tells
the user where to look when something odd happens.
"""
import warnings

from mmengine.utils import digit_version

# (package import name, lowest tested, first untested major)
TESTED_RANGES = (
    ('mmengine', '0.10.3', '1.0.0'),
    ('mmcv', '2.0.0', '3.0.0'),
)


def check_dependency_versions() -> None:
    """Emit a ``UserWarning`` for every dependency outside its tested range."""
    for name, low, high in TESTED_RANGES:
        try:
            module = __import__(name)
        except ImportError:
            continue  # mmcv is optional at import time; its users fail later
        version = getattr(module, '__version__', '0')
        if not digit_version(low) <= digit_version(version) < digit_version(
                high):
            warnings.warn(
                f'hvlm is tested with {name}>={low},<{high} but found '
                f'{name}=={version}; things may break.',
                stacklevel=2)
