"""Pictures of model outputs (drawn with matplotlib's Agg canvas)."""
from .timeline import draw_timeline, pack_lanes, timeline_figure

__all__ = ['draw_timeline', 'timeline_figure', 'pack_lanes']
