"""benchmark_selfsup: the cases it builds run, and ratios are taken
against the baseline of the same group."""
import importlib.util

from hvlm.analysis.selfsup_benchmark import benchmark, format_table, run_case
from .conftest import REPO


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_selfsup',
        REPO / 'tools' / 'analysis_tools' / 'benchmark_selfsup.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_groups_run_with_baselines_first():
    tool = load_tool()
    args = tool.parse_args([
        '--simclr-size', '16', '--simclr-batch', '2', '--hires-size', '32',
        '--hires-batch', '1', '--patch-size', '4', '--embed-dim', '8',
        '--depths', '1', '1', '--heads', '1', '2', '--repeat', '1',
        '--efficient-cfg', '{"window_size": 4, "num_global": 1}'])
    groups = tool.build_groups(args)
    simclr, hires = groups.values()
    assert [c['backbone']['with_cp'] for c in simclr] == [False, True]
    assert [c['backbone']['attention']['type'] for c in hires] == \
        ['FullAttention', 'LocalGlobalAttention']
    # in this process (a fresh one per case is the tool's default)
    rows = benchmark(groups, run=lambda spec: run_case(
        {k: v for k, v in spec.items() if k != 'threads'}))
    assert [r['speed_vs_baseline'] for r in rows][0::2] == [1.0, 1.0]
    for row in rows:
        assert row['status'] == 'ok' and row['images_per_s'] > 0
    base, cp = rows[0], rows[1]
    assert cp['speed_vs_baseline'] == cp['images_per_s'] / \
        base['images_per_s']
    assert 'with_cp=True' in format_table(rows)
