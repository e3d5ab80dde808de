"""Pictures of model outputs (drawn with matplotlib's Agg canvas)."""
from .timeline import draw_timeline

__all__ = ['draw_timeline']
