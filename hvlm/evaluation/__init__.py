"""Evaluation: importing this package registers every metric."""
from .metrics import *  # noqa: F401,F403
