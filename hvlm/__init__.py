"""hvlm: hierarchical video-language models for long videos."""
from .utils.version_check import check_dependency_versions
from .version import __version__

check_dependency_versions()

__all__ = ['__version__']
