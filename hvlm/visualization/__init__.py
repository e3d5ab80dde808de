"""Pictures of model outputs (drawn with matplotlib's Agg canvas)."""
from .scene_graph import box_colour, draw_scene_graph
from .timeline import draw_timeline, pack_lanes, timeline_figure

__all__ = ['draw_timeline', 'timeline_figure', 'pack_lanes',
           'draw_scene_graph', 'box_colour']
