import json

from .conftest import REPO, run_tool

CONFIG = str(REPO / 'configs' / 'token_merging' / 'hier_sports_adaptive.py')
TINY = ['model.backbone.embed_dims=(16,32)', 'model.backbone.depths=(1,1)',
        'model.backbone.num_heads=(2,2)']


def test_benchmark_runs_every_ratio_against_the_baseline(tmp_path):
    out = tmp_path / 'merging.json'
    proc = run_tool('analysis_tools/benchmark_merging.py', CONFIG,
                    '--ratios', '0.5', '0.25', '--iters', '2', '--warmup',
                    '1', '--batch-size', '2', '--clip-shape', '4', '32',
                    '32', '--threads', '1', '--out-json', out,
                    '--cfg-options', *TINY)
    assert '| 1.00 | 32 |' in proc.stdout  # the baseline row, added
    result = json.loads(out.read_text())
    rows = {row['ratio']: row for row in result['rows']}
    assert sorted(rows) == [0.25, 0.5, 1.0]
    # a 4 x 32 x 32 clip in (2, 8, 8) tubelets: a (2, 4, 4) grid
    assert [rows[r]['tokens_after_merge'] for r in (1.0, 0.5, 0.25)] == \
        [32, 16, 8]
    assert rows[1.0]['speedup'] == 1.0
    assert rows[1.0]['overhead_share'] == 0.0  # no merger, nothing timed
    for ratio in (0.5, 0.25):
        row = rows[ratio]
        assert row['clips_per_s'] > 0
        assert 0 < row['overhead_share'] < 1
        assert row['overhead_share'] == sum(
            row[f'{c}_share'] for c in ('motion', 'saliency', 'matching'))
