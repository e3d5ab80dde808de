"""One picture of what the model found in a video, over time."""
import os
import os.path as osp
import textwrap
from typing import Optional

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def draw_timeline(result: dict,
                  out_file: str,
                  title: Optional[str] = None,
                  dpi: int = 100) -> str:
    """Draw an :func:`hvlm.apis.inference_video` result as a PNG timeline.

    Rows, sharing one time axis from 0 to the video's duration:

    - *actions*: every detected segment as a bar coloured by its class
      and labelled ``class score``; overlapping segments go to separate
      lanes;
    - *actionness*: the per-frame probability that an action is under way,
      with the segment spans shaded behind it;
    - *captions*: each caption as a bar over its segment with its text
      above, one lane per caption.

    Rows for tasks the result lacks are left out; the answer to the
    question, if any, goes under the title. The figure is drawn with
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
    duration = float(result['duration'])
    detection = result.get('action_detection')
    captions = (result.get('captioning') or {}).get('captions', [])
    rows = []
    if detection is not None:
        rows += ['actions', 'actionness']
    if captions:
        rows.append('captions')
    if not rows:
        rows.append('empty')
    heights = {'actions': 1.2, 'actionness': 1.6, 'captions': 1.4,
               'empty': 1.0}
    fig = Figure(figsize=(12, 1.2 + sum(heights[r] for r in rows)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(
        len(rows), 1, sharex=True, squeeze=False,
        gridspec_kw=dict(height_ratios=[heights[r] for r in rows]))[:, 0]
    colours = colormaps['tab10']
    for ax, row in zip(axes, rows):
        ax.set_xlim(0, duration)
        if row == 'actions':
            _draw_segments(ax, detection['segments'], colours)
        elif row == 'actionness':
            _draw_actionness(ax, detection, colours)
        elif row == 'captions':
            _draw_captions(ax, captions)
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
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    fig.savefig(out_file, dpi=dpi, format='png')
    return out_file


def _lanes(spans) -> list:
    """Lane of each ``(start, end)`` so that no two overlapping spans share
    one (greedy, in start order)."""
    ends, lane_of = [], [0] * len(spans)
    for i in sorted(range(len(spans)), key=lambda i: spans[i][0]):
        start, end = spans[i]
        free = next((k for k, e in enumerate(ends) if e <= start), None)
        if free is None:
            free = len(ends)
            ends.append(end)
        ends[free] = end
        lane_of[i] = free
    return lane_of


def _draw_segments(ax, segments, colours) -> None:
    ax.set_ylabel('actions', rotation=0, ha='right', va='center')
    ax.set_yticks([])
    if not segments:
        ax.text(0.5, 0.5, 'no action detected', ha='center', va='center',
                transform=ax.transAxes)
        return
    lanes = _lanes([(s['start'], s['end']) for s in segments])
    for seg, lane in zip(segments, lanes):
        width = seg['end'] - seg['start']
        ax.barh(lane, width, left=seg['start'], height=0.8,
                color=colours(seg['label_id'] % colours.N), alpha=0.85)
        ax.text(seg['start'] + width / 2, lane,
                f'{seg["label"]} {seg["score"]:.2f}', ha='center',
                va='center', fontsize=8, clip_on=True)
    ax.set_ylim(max(lanes) + 0.6, -0.6)


def _draw_actionness(ax, detection, colours) -> None:
    frames = detection['frames']
    for seg in detection['segments']:
        ax.axvspan(seg['start'], seg['end'], alpha=0.15,
                   color=colours(seg['label_id'] % colours.N))
    ax.plot(frames['time'], frames['actionness'], color='black', lw=1.2)
    ax.set_ylim(0, 1)
    ax.set_ylabel('actionness', rotation=0, ha='right', va='center')


def _draw_captions(ax, captions) -> None:
    ax.set_ylabel('captions', rotation=0, ha='right', va='center')
    ax.set_yticks([])
    lanes = list(range(len(captions)))
    for caption, lane in zip(captions, lanes):
        width = caption['end'] - caption['start']
        ax.barh(lane, width, left=caption['start'], height=0.25,
                color='tab:gray', alpha=0.6)
        text = textwrap.shorten(caption['text'] or '(empty)', width=80)
        ax.text(caption['start'], lane - 0.2, text, ha='left',
                va='bottom', fontsize=8, clip_on=True)
    ax.set_ylim(len(captions) - 0.4, -0.8)
