"""hvlm: hierarchical video-language models for long videos."""
# OpenCV before decord: decord's bundled libraries, loaded first, leave
# OpenCV's PNG codec bound to an incompatible zlib ("libpng error: bad
# parameters to zlib", cv2.imread returns None). Loaded in this order both
# work, so hvlm loads OpenCV first; import hvlm before decord in your code.
import cv2  # noqa: F401  isort:skip
from .utils.version_check import check_dependency_versions
from .version import __version__

check_dependency_versions()

__all__ = ['__version__']
