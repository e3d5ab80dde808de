"""One picture of what the model found in a video, over time."""
import os
import os.path as osp
import textwrap
from typing import List, Optional, Sequence, Tuple

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextPath

__all__ = ['draw_timeline', 'timeline_figure', 'pack_lanes']

FONT_SIZE = 8  # points, every label of the rows
WIDTH_IN = 12.  # figure width, inches
CAPTION_CHARS = 40  # captions wrap at this many characters


def pack_lanes(extents: Sequence[Tuple[float, float]]) -> List[int]:
    """Lane of each ``(start, end)`` so that no two overlapping extents
    share one (greedy in start order: the first lane free at the start).

    Extents include the label drawn from the start, so labels of one lane
    never overlap each other either.
    """
    ends: List[float] = []
    lane_of = [0] * len(extents)
    for i in sorted(range(len(extents)), key=lambda i: extents[i][0]):
        start, end = extents[i]
        free = next((k for k, e in enumerate(ends) if e <= start), None)
        if free is None:
            free = len(ends)
            ends.append(end)
        ends[free] = end
        lane_of[i] = free
    return lane_of


def _text_width_s(text: str, seconds_per_px: float, dpi: int) -> float:
    """Width of ``text`` (FONT_SIZE, longest line) in seconds of the axis."""
    widest = max(text.split('\n'), key=len) or ' '
    points = TextPath((0, 0), widest,
                      prop=FontProperties(size=FONT_SIZE)).get_extents().width
    # + the leading space the labels are drawn with, and a margin
    return (points * dpi / 72 + 10) * seconds_per_px


def _label_layout(items: Sequence[dict], texts: Sequence[str],
                  duration: float, seconds_per_px: float, dpi: int
                  ) -> Tuple[List[float], List[int]]:
    """Where each label starts (at its item's start, or moved left so that
    it ends at the axis' end) and the lane of each item, packed by the
    extent of the bar and its label together."""
    xs, extents = [], []
    for item, text in zip(items, texts):
        width = _text_width_s(text, seconds_per_px, dpi)
        x = item['start'] if item['start'] + width <= duration else max(
            0., duration - width)
        xs.append(x)
        extents.append((min(item['start'], x), max(item['end'], x + width)))
    return xs, pack_lanes(extents)


def timeline_figure(result: dict,
                    title: Optional[str] = None,
                    dpi: int = 100) -> Figure:
    """The figure :func:`draw_timeline` saves; its axes carry the
    ``row`` name as their ``gid`` (``'ground truth'``, ``'actions'``,
    ``'actionness'``, ``'captions'``)."""
    duration = max(float(result['duration']), 1e-3)
    detection = result.get('action_detection')
    captions = (result.get('captioning') or {}).get('captions', [])
    truth = (result.get('ground_truth') or {}).get('actions')
    # the axes span about 85% of the figure's width
    seconds_per_px = duration / (0.85 * WIDTH_IN * dpi)
    # name, items, label texts, (label x, lanes)
    rows: List[Tuple[str, list, list, tuple]] = []

    def add(name, items, texts):
        rows.append((name, items, texts,
                     _label_layout(items, texts, duration, seconds_per_px,
                                   dpi)))

    if truth is not None:
        add('ground truth', truth, [a['label'] for a in truth])
    if detection is not None:
        segments = detection['segments']
        add('actions', segments,
            [f'{s["label"]} {s["score"]:.2f}' for s in segments])
        rows.append(('actionness', [], [], ([], [])))
    if captions:
        add('captions', captions, [
            '\n'.join(textwrap.wrap(c['text'] or '(empty)', CAPTION_CHARS))
            for c in captions
        ])
    if not rows:
        rows.append(('empty', [], [], ([], [])))
    heights = [_row_height(name, texts, layout[1])
               for name, _, texts, layout in rows]
    fig = Figure(figsize=(WIDTH_IN, 1.2 + sum(heights)), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False,
                        gridspec_kw=dict(height_ratios=heights))[:, 0]
    colours = colormaps['tab10']
    for ax, (name, items, texts, layout) in zip(axes, rows):
        ax.set_gid(name)
        ax.set_xlim(0, duration)
        if name in ('ground truth', 'actions'):
            _draw_bars(ax, name, items, texts, layout, colours)
        elif name == 'actionness':
            _draw_actionness(ax, detection, colours)
        elif name == 'captions':
            _draw_captions(ax, items, texts, layout)
        else:
            ax.set_yticks([])
            ax.text(0.5, 0.5, 'no task output', ha='center', va='center',
                    transform=ax.transAxes)
    axes[-1].set_xlabel('time (s)')
    heading = title or osp.basename(str(result.get('video', '')))
    qa = result.get('qa')
    if qa:
        heading += (f'\nQ: {qa["question"]}  A: {qa["answer"]} '
                    f'({qa["score"]:.2f})')
    fig.suptitle(heading, fontsize=10)
    fig.tight_layout()
    return fig


def draw_timeline(result: dict,
                  out_file: str,
                  title: Optional[str] = None,
                  dpi: int = 100) -> str:
    """Draw an :func:`hvlm.apis.inference_video` result as a PNG timeline.

    Rows, sharing one time axis from 0 to the video's duration:

    - *ground truth* (when the result has ``ground_truth``): the annotated
      actions, labelled;
    - *actions*: every detected segment as a bar coloured by its class
      and labelled ``class score``;
    - *actionness*: the per-frame probability that an action is under
      way, with the segment spans shaded behind it. The axis spans the
      curve's own range (a trained model's actionness often varies within
      a hundredth of 1, which a 0-1 axis flattens onto its border);
    - *captions*: each caption's text, wrapped, above a bar over its
      segment.

    Bars whose extent (the bar, or its label if that is wider) overlaps
    another go to separate lanes (:func:`pack_lanes`), so no label covers
    another. Rows for what the result lacks are left out; the answer to
    the question, if any, goes under the title. The figure is drawn with
    matplotlib's Agg canvas directly, so no display and no pyplot state are
    involved.

    Args:
        result (dict): What ``inference_video`` returned.
        out_file (str): PNG to write; its directory is created.
        title (str, optional): Defaults to the video's file name.
        dpi (int): Resolution.

    Returns:
        str: ``out_file``.
    """
    fig = timeline_figure(result, title, dpi)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=dpi, format='png')
    return out_file


def _row_height(name: str, texts: Sequence[str], lanes: Sequence[int]
                ) -> float:
    """Inches of a row: enough for its lanes (and caption lines)."""
    if name == 'actionness':
        return 1.6
    if name == 'empty' or not lanes:
        return 0.8
    if name == 'captions':
        lines = [max((t.count('\n') + 1 for t, lane in zip(texts, lanes)
                      if lane == k), default=1)
                 for k in range(max(lanes) + 1)]
        return 0.3 + sum(0.18 * n + 0.15 for n in lines)
    return 0.3 + 0.28 * (max(lanes) + 1)


def _draw_bars(ax, name, items, texts, layout, colours) -> None:
    label_xs, lanes = layout
    ax.set_ylabel(name, rotation=0, ha='right', va='center')
    ax.set_yticks([])
    if not items:
        ax.text(0.5, 0.5, 'no action detected' if name == 'actions' else
                'no annotated action', ha='center', va='center',
                transform=ax.transAxes)
        return
    labels = sorted({it['label'] for it in items})
    for item, text, x, lane in zip(items, texts, label_xs, lanes):
        colour = colours(item['label_id'] % colours.N) if 'label_id' in \
            item else colours(labels.index(item['label']) % colours.N)
        ax.barh(lane, item['end'] - item['start'], left=item['start'],
                height=0.8, color=colour, alpha=0.55 if name == 'actions'
                else 0.35, edgecolor=colour)
        ax.text(x, lane, ' ' + text, ha='left', va='center',
                fontsize=FONT_SIZE, clip_on=True)
    ax.set_ylim(max(lanes) + 0.6, -0.6)


def _draw_actionness(ax, detection, colours) -> None:
    frames = detection['frames']
    values = frames['actionness']
    for seg in detection['segments']:
        ax.axvspan(seg['start'], seg['end'], alpha=0.15,
                   color=colours(seg['label_id'] % colours.N))
    ax.plot(frames['time'], values, color='black', lw=1.2)
    low, high = (min(values), max(values)) if values else (0., 1.)
    pad = max((high - low) * 0.1, 1e-4)
    ax.set_ylim(max(low - pad, 0.), min(high + pad, 1.))
    ax.set_ylabel('actionness\n(probability)', rotation=0, ha='right',
                  va='center')
    ax.ticklabel_format(axis='y', useOffset=False)
    ax.tick_params(axis='y', labelsize=FONT_SIZE)


def _draw_captions(ax, captions, texts, layout) -> None:
    label_xs, lanes = layout
    ax.set_ylabel('captions', rotation=0, ha='right', va='center')
    ax.set_yticks([])
    # each lane as tall as its longest caption (in lines), stacked downwards
    lines = [max((t.count('\n') + 1 for t, lane in zip(texts, lanes)
                  if lane == k), default=1) for k in range(max(lanes) + 1)]
    tops = [sum(lines[:k]) + k for k in range(len(lines))]
    for caption, text, x, lane in zip(captions, texts, label_xs, lanes):
        bar_y = tops[lane] + lines[lane] + 0.3
        ax.barh(bar_y, caption['end'] - caption['start'],
                left=caption['start'], height=0.4, color='tab:gray',
                alpha=0.6)
        ax.text(x, bar_y - 0.3, text, ha='left', va='bottom',
                fontsize=FONT_SIZE, clip_on=True, linespacing=1.1)
    ax.set_ylim(tops[-1] + lines[-1] + 0.7, -0.2)
