"""tools/analysis_tools/motion_stats.py on the tiny demo set: what the
merger's motion cue reports for real clips and for static copies."""
import json

import torch

from hvlm.analysis.motion_stats import format_motion_stats, motion_stats
from .conftest import REPO, TINY, data_options, run_tool

ADAPTIVE = str(REPO / 'tests' / 'data' / 'configs' /
               'tiny_sports_strategies.py')


def test_motion_stats_on_real_clips(tiny_demo_root, tmp_path):
    out = tmp_path / 'motion.json'
    proc = run_tool('analysis_tools/motion_stats.py', ADAPTIVE, '--split',
                    'val', '--out-json', out, '--cfg-options',
                    *data_options(tiny_demo_root))
    result = json.loads(out.read_text())
    assert result['min_motion'] == 0.5
    # 8 validation videos, every clip the pipeline samples
    assert result['num_clips'] == len(result['moving']) == len(
        result['static']) >= 8
    moving = torch.tensor(result['moving'])
    static = torch.tensor(result['static'])
    # a static copy's flow is noise, well under the floor; the demo's
    # objects move, so the recorded clips are faster than their copies
    assert static.max() < 0.25
    assert (moving > static).float().mean() > 0.75
    assert moving.median() > 2 * static.max()
    assert 'static copies (first frame repeated)' in proc.stdout
    assert 'share under min_motion' in proc.stdout


def test_motion_stats_needs_a_motion_merger(tiny_demo_root):
    proc = run_tool('analysis_tools/motion_stats.py', TINY, '--cfg-options',
                    *data_options(tiny_demo_root), check=False)
    assert proc.returncode == 2
    assert 'has no motion cue' in proc.stderr


def test_format_counts_clips_under_the_floor():
    table = format_motion_stats(
        dict(min_motion=0.5, num_clips=4, moving=[0.1, 0.6, 1.0, 1.2],
             static=[0.05, 0.06, 0.07, 0.08]))
    rows = table.splitlines()
    assert rows[-2].endswith('| 25.0% |')
    assert rows[-1].endswith('| 100.0% |')
    assert '| 0.100 |' in rows[-2]  # q0 of the recorded clips


def test_static_copies_match_the_merger(tiny_demo_root):
    """The tool's numbers are the merger's own cue: a clip that does not
    move gives the same as its static copy."""
    from hvlm.analysis.dataset_browser import build_split_dataset
    from mmengine.config import Config
    cfg = Config.fromfile(ADAPTIVE)
    cfg.merge_from_dict(
        dict(o.split('=', 1) for o in data_options(tiny_demo_root)))
    dataset = build_split_dataset(cfg, 'val')
    still = [dict(item) for item in (dataset[0], dataset[1])]
    for item in still:
        item['inputs'] = item['inputs'][..., :1, :, :].expand_as(
            item['inputs']).clone()
    result = motion_stats(cfg.model.to_dict(), still)
    torch.testing.assert_close(torch.tensor(result['moving']),
                               torch.tensor(result['static']))
