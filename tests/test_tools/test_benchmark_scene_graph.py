"""benchmark_scene_graph: the plain loop agrees with SceneGraphRecall (and
with a hand-counted frame), the training benchmark times what is
registered and lists what is not."""
import importlib.util

import numpy as np
import pytest

from hvlm.analysis.scene_graph_benchmark import (benchmark_evaluator,
                                                 benchmark_training,
                                                 format_scene_graph_benchmark,
                                                 loop_recall,
                                                 synthetic_videos)
from hvlm.evaluation.metrics.scene_graph_recall import SceneGraphRecall

from .conftest import REPO


def test_loop_recall_by_hand():
    # one object: attention looking_at, spatial in_front_of, contacting
    # holding; predictions get attention and holding right, spatial wrong
    video = dict(
        person_boxes=np.array([[0., 0, 9, 9]]), obj_frames=np.array([0]),
        obj_boxes=np.array([[20., 0, 29, 9]]), obj_labels=np.array([5]),
        attention=np.array([0]), spatial=np.eye(6)[[2]],
        contacting=np.eye(17)[[5]],
        pred_boxes=np.array([[0., 0, 9, 9], [21., 0, 29, 9]]),
        pred_box_frames=np.array([0, 0]), pred_labels=np.array([1, 5]),
        pred_scores=np.array([1., .5]), pred_pairs=np.array([[0, 1]]),
        pred_attention=np.array([[.7, .2, .1]]),
        pred_spatial=np.eye(6)[[3]] * .95, pred_contacting=np.eye(17)[[5]])
    r = loop_recall([video], (1, 20), ('with', 'semi', 'no'))
    assert r['with_R@20'] == pytest.approx(2 / 3)
    # the best triplet: holding (0.5 x 1) before looking_at (0.5 x 0.7)
    assert r['with_R@1'] == pytest.approx(1 / 3)
    assert r['semi_R@20'] == pytest.approx(2 / 3)
    # no constraint lists every predicate: in_front_of is found too
    assert r['no_R@20'] == pytest.approx(1.0)
    # 3 predicates present, with constraint 2 recalled
    assert r['with_mR@20'] == pytest.approx(2 / 3)


def test_evaluator_benchmark_checks_agreement():
    data = synthetic_videos(videos=3, frames=2, objects=2, seed=1)
    metric = SceneGraphRecall(ks=(10, 20))
    metric.process(None, data)
    want = metric.compute_metrics(metric.results)
    got = loop_recall(data, (10, 20), ('with', 'semi', 'no'))
    assert set(got) == set(want)
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-12), k
    # a different definition is caught (IoU threshold 0.3)
    loose = loop_recall(data, (10, 20), ('with', ), iou_threshold=0.3)
    assert loose['with_R@20'] > want['with_R@20']
    res = benchmark_evaluator(videos=3, frames=2, objects=2, repeats=1)
    assert res['frames'] == 6 and res['speedup'] > 0
    assert set(res['frames_per_second']) == {'SceneGraphRecall',
                                             'per-frame loop'}


def test_training_benchmark_and_tool_args():
    res = benchmark_training(
        str(REPO / 'configs' / 'scene_graph'),
        models=('STTran', 'STKET', 'NoSuchModel'), videos=1, frames=2,
        objects=1,
        iters=1, warmup=0,
        extra={'STTran per-frame': dict(config='STTran', temporal_layer=0)})
    # STKET runs: its priors are counted on the synthetic batch
    assert set(res['seconds_per_frame']) == {'STTran', 'STKET',
                                             'STTran per-frame'}
    assert res['skipped'] == ['NoSuchModel']
    assert res['ratio']['STTran'] == 1.0
    assert all(s > 0 for s in res['seconds_per_frame'].values())
    evaluator = dict(frames=6, seconds={'SceneGraphRecall': .1,
                                        'per-frame loop': .2},
                     frames_per_second={'SceneGraphRecall': 60.,
                                        'per-frame loop': 30.},
                     speedup=2.0, recalls={'with_R@20': .5})
    text = format_scene_graph_benchmark(evaluator, res)
    assert '2.0x' in text and 'NoSuchModel' in text and 'ms/frame' in text
    spec = importlib.util.spec_from_file_location(
        'benchmark_scene_graph',
        REPO / 'tools' / 'analysis_tools' / 'benchmark_scene_graph.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = tool.parse_args(['--videos', '5', '--objects', '2'])
    assert (args.videos, args.objects, args.frames) == (5, 2, 8)
