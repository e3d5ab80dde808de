"""tools/train.py on the scene-graph demo config, as a user runs it, with
the demo data generated on first use (small) and a tiny model."""
import json
from pathlib import Path

import pytest

from .conftest import REPO, find_one, run_tool

CONFIG = str(REPO / 'configs' / 'scene_graph' / 'sttran_predcls_demo.py')


TINY_MODEL = ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
              'model.hidden_dim=32', 'model.backbone.channels=(8,16)',
              'model.temporal_layer=1', 'default_hooks.logger.interval=1']


def demo_options(root) -> list:
    opts = []
    for split in ('train', 'val'):
        ds = f'{split}_dataloader.dataset'
        opts += [f'{ds}.data_root={root}', f'{ds}.demo.root={root}',
                 f'{ds}.demo.videos=(8,4)',
                 f'{ds}.pipeline.0.scale=(36,48)',
                 f'{split}_dataloader.batch_size=2',
                 f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    return opts


PLATEAU = str(REPO / 'configs' / 'scene_graph' /
              'sttran_predcls_demo_plateau.py')


@pytest.fixture(scope='module')
def predcls_run(tmp_path_factory):
    """tools/train.py on the PredCLS demo config with `-scheduler plateau`
    (the demo config with ReduceOnPlateauLR), once for this module: three
    epochs, a flat warm-up, and an R@20 that can never rise by 2, so that the
    learning rate must fall after the second validation."""
    tmp = tmp_path_factory.mktemp('sg_train')
    root, work = tmp / 'ag_demo', tmp / 'work'
    plateau = [f'param_scheduler.1.{k}' for k in (
        'patience=0', 'threshold=2.0', 'threshold_rule=abs', 'factor=0.1')]
    run_tool('train.py', PLATEAU, '--work-dir', work, '--cfg-options',
             *TINY_MODEL, 'train_cfg.max_epochs=3',
             'param_scheduler.0.start_factor=1.0', *plateau,
             *demo_options(root), timeout=600)
    return root, work


@pytest.mark.slow
def test_train_sttran_demo_end_to_end(predcls_run):
    root, work = predcls_run
    # the data set was generated in Action Genome's layout
    assert (root / 'annotations' / 'person_bbox.pkl').is_file()
    assert (root / 'annotations'
            / 'object_bbox_and_relationship_filtersmall.pkl').is_file()
    log = find_one(work, '*.log').read_text()
    assert 'ActionGenomeDataset(train, predcls)' in log
    assert 'video_too_short=' in log  # the drop rule is counted
    scalars = [json.loads(line) for line in find_one(
        work, 'scalars.json').read_text().splitlines()]
    val = [s for s in scalars if 'sg/with_R@20' in s]
    assert val and 0.0 <= val[-1]['sg/with_R@20'] <= 1.0
    assert 'sg/with_mR@20' in val[-1] and 'sg/no_R@100' in val[-1]
    assert find_one(work, 'best_sg_with_R@20_epoch_*.pth').is_file()
    # -scheduler plateau: epoch 1 sets the best R@20, epoch 2 cannot beat
    # it by 2, so epoch 3 trains at a tenth of the learning rate
    lr = {}
    for s in scalars:
        if 'lr' in s and 'epoch' in s:
            lr.setdefault(s['epoch'], set()).add(round(s['lr'], 12))
    assert lr[1] == lr[2] == {1e-3}, lr
    assert lr[3] == {1e-4}, lr


def test_frequency_baseline_tool_on_the_demo(tmp_path):
    import importlib.util

    import numpy as np
    from mmengine.config import Config

    from hvlm.datasets import ActionGenomeDataset
    from hvlm.models.scene_graphs import FrequencyBaseline
    spec = importlib.util.spec_from_file_location(
        'scene_graph_baseline',
        REPO / 'tools' / 'analysis_tools' / 'scene_graph_baseline.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    root = str(tmp_path / 'ag_demo')
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict({
        f'{s}_dataloader.dataset.{k}': v
        for s in ('train', 'test')
        for k, v in (('data_root', root), ('demo.root', root),
                     ('demo.videos', (8, 4)))
    })
    metrics = tool.evaluate(cfg)
    assert set(metrics) >= {'sg/with_R@20', 'sg/with_mR@20', 'sg/no_R@100'}
    # the attention the tool ranks first per class is the training
    # split's most frequent one
    train = ActionGenomeDataset(root, split='train')
    infos = [train.get_data_info(i) for i in range(len(train))]
    labels = np.concatenate([i['obj_labels'] for i in infos])
    att = np.concatenate([i['attention'] for i in infos])
    probs = FrequencyBaseline().fit(infos).probabilities()['attention']
    for c in np.unique(labels):
        counts = np.bincount(att[labels == c], minlength=3)
        assert counts[probs[c].argmax()] == counts.max()


def _weights(path):
    import torch
    state = torch.load(path, map_location='cpu', weights_only=False)
    return state['state_dict']


def _tool(path: str):
    """A tool's module, to call its ``main`` in this process (the PredCLS
    run went through a subprocess, as users run it; the others need not
    pay the imports again)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        Path(path).stem, REPO / 'tools' / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_progressive_predcls_sgcls_sgdet(predcls_run, tmp_path, capsys):
    """SGCLS from the PredCLS checkpoint, then SGDET from the SGCLS one,
    with detections written by tools/misc/write_gt_detections.py. The
    learning rate is 0 so that each run's checkpoint shows the weights it
    loaded."""
    import torch
    train_tool = _tool('train.py')
    root, work = predcls_run
    dets = tmp_path / 'detections.npz'
    assert _tool('misc/write_gt_detections.py').main([
        str(root), str(dets), '--jitter', '0.05', '--drop', '0.1',
        '--false-positives', '1']) == 0
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counts['true'] > 0 and counts['false_positives'] > 0
    frozen = ['optim_wrapper.optimizer.lr=0.0']
    previous = find_one(work, 'epoch_3.pth')
    # SGCLS is not validated here (the end-to-end run validates its
    # metric); SGDET is, to evaluate detected boxes end to end
    steps = (('sgcls', 'sttran_sgcls_demo.py', ['train_cfg.val_interval=2']),
             ('sgdet', 'sttran_sgdet_demo.py',
              [f'{s}_dataloader.dataset.detections_file={dets}'
               for s in ('train', 'val')]))
    for mode, config, extra in steps:
        step = tmp_path / mode
        train_tool.main([
            str(REPO / 'configs' / 'scene_graph' / config), '--work-dir',
            str(step), '--cfg-options', f'load_from={previous}',
            *TINY_MODEL, *frozen, *[str(o) for o in demo_options(root)],
            *extra])
        log = find_one(step, '*.log').read_text()
        assert f'ActionGenomeDataset(train, {mode})' in log
        before, after = _weights(previous), _weights(
            find_one(step, 'epoch_1.pth'))
        for key in ('backbone.layers.0.weight', 'pair_fc.weight',
                    'relation_head.attention.weight'):
            k = next(k for k in after if k.endswith(key))
            torch.testing.assert_close(after[k], before[k])
        if mode == 'sgcls':  # the classifier is new: allowed missing
            assert 'keep their initial values, as load_from_allow_missing' \
                in log and 'obj_classifier' in log
        else:
            scalars = [json.loads(line) for line in find_one(
                step, 'scalars.json').read_text().splitlines()]
            assert any('sg/with_R@20' in s for s in scalars)
        previous = find_one(step, 'epoch_1.pth')


@pytest.mark.slow
def test_inference_scene_graph_tool(predcls_run, tmp_path):
    """tools/inference_scene_graph.py on the PredCLS checkpoint: the JSON
    lists the model's own best triplets (recomputed here in numpy from its
    scores), and every frame's PNG shows each box's outline."""
    import cv2
    import numpy as np
    import torch

    from hvlm.apis import init_model
    from hvlm.visualization import box_colour
    root, work = predcls_run
    tool = _tool('inference_scene_graph.py')
    ckpt = find_one(work, 'epoch_3.pth')
    opts = [o for o in TINY_MODEL if o.startswith('model.')] + [
        o for o in demo_options(root) if o.startswith('train_dataloader.')
        and 'data_root' in o or o.startswith('val_dataloader.dataset')]
    # the demo config's test data is its val data
    cfg_opts = [o.replace('val_dataloader', 'test_dataloader')
                for o in opts]
    out = tmp_path / 'out'
    argv = [str(CONFIG), str(ckpt), '--video', 'D0008.mp4', '--out',
            str(out), '--top-k', '100', '--cfg-options', *cfg_opts]
    assert tool.main(argv) == 0
    result = json.loads((out / 'D0008.mp4.json').read_text())

    # the model's scores, and the with-constraint triplets from them
    model = init_model(CONFIG, str(ckpt),
                       cfg_options=tool.parse_args(argv).cfg_options)
    dataset = tool.build_dataset(model.cfg, 'test')
    index = [dataset.get_data_info(i)['video_id']
             for i in range(len(dataset))].index('D0008.mp4')
    item = dataset[index]
    with torch.no_grad():
        pred = model.test_step(dict(inputs=[item['inputs']],
                                    data_samples=[item['data_samples']]))[0]
    classes = dataset.metainfo['classes']
    predicates = dataset.metainfo['predicates']
    frames = pred['pred_box_frames'].numpy()
    labels, scores = pred['pred_labels'].numpy(), pred['pred_scores'].numpy()
    assert len(result['frames']) == len(item['data_samples']['frame_names'])
    for t, frame in enumerate(result['frames']):
        want = []
        for p, (s, o) in enumerate(pred['pred_pairs'].numpy()):
            if frames[s] != t:
                continue
            for group, offset, rev in (('pred_attention', 0, False),
                                       ('pred_spatial', 3, True),
                                       ('pred_contacting', 9, False)):
                k = int(pred[group][p].argmax())
                a, b = (o, s) if rev else (s, o)
                want.append((classes[labels[a]], predicates[offset + k],
                             classes[labels[b]], round(float(
                                 scores[a] * scores[b] * pred[group][p, k]),
                                 5)))
        got = [(x['subject'], x['predicate'], x['object'],
                round(x['score'], 5)) for x in frame['triplets']]
        assert sorted(got) == sorted(want)
        assert [g[3] for g in got] == sorted([g[3] for g in got],
                                             reverse=True)
        png = out / 'D0008.mp4' / (Path(frame['frame']).stem + '.png')
        img = cv2.imread(str(png))[..., ::-1]
        H, W = item['data_samples']['img_shape']
        assert img.shape[0] > H and img.shape[1] == W  # panel under it
        for obj in frame['objects']:
            x1, y1, x2, y2 = (int(round(v)) for v in obj['box'])
            x1, y1 = max(x1, 0), max(y1, 0)
            x2, y2 = min(x2, W - 1), min(y2, H - 1)
            edges = np.concatenate([img[y1, x1:x2 + 1], img[y2, x1:x2 + 1],
                                    img[y1:y2 + 1, x1], img[y1:y2 + 1, x2]])
            drawn = (edges == box_colour(obj['label'])).all(1).mean()
            assert drawn > 0.6, (frame['frame'], obj, drawn)


def test_roc_auc_and_predicate_separation_by_hand():
    import numpy as np

    from hvlm.analysis.predicate_separation import (predicate_separation,
                                                    roc_auc)

    # positives .9, .4; negatives .4, .1: pairs above 3, one tie: 3.5 / 4
    assert roc_auc([.9, .4, .4, .1], [1, 1, 0, 0]) == 0.875
    assert np.isnan(roc_auc([.3, .2], [1, 1]))
    names = [f'a{i}' for i in range(3)] + [f's{i}' for i in range(6)] + \
        [f'c{i}' for i in range(17)]
    con = np.zeros((4, 17))
    con[:3, 5] = 1  # c5 ("holding") on objects 0-2
    con[[0, 1], 0] = 1  # c0 ("carrying") on objects 0, 1
    pred_con = np.zeros((4, 17))
    pred_con[:, 0] = [.2, .7, .5, .9]  # object 3 has no c5: not counted
    sample = dict(obj_labels=np.arange(4), attention=np.array([0, 1, 2, 0]),
                  spatial=np.zeros((4, 6)), contacting=con,
                  pred_pairs=np.zeros((4, 2)), pred_contacting=pred_con)
    out = predicate_separation([sample], 'c0', 'c5', names)
    # positives .2, .7 against the negative .5: one of two above
    assert out['auc'] == 0.5 and out['pairs'] == 3
    assert out['positives'] == 2
    assert out['mean_score_positive'] == pytest.approx(.45)
    # within an attention predicate (class indices): objects 0 and 3
    out = predicate_separation([sample], 'c0', 'a0', names)
    # (object 0 carries at .2, object 3 does not at .9)
    assert out['pairs'] == 2 and out['auc'] == 0.0
    with pytest.raises(KeyError, match="'c99' is not among"):
        predicate_separation([sample], 'c99', None, names)


@pytest.mark.slow
def test_predicate_auc_tool(predcls_run):
    """tools/analysis_tools/scene_graph_predicate_auc.py on the PredCLS
    checkpoint: its AUC is the one counted here from the model's scores."""
    import numpy as np
    import torch

    from hvlm.apis import init_model
    root, work = predcls_run
    tool = _tool('analysis_tools/scene_graph_predicate_auc.py')
    ckpt = str(find_one(work, 'epoch_3.pth'))
    opts = [o for o in TINY_MODEL if o.startswith('model.')] + [
        o.replace('val_dataloader', 'test_dataloader')
        for o in demo_options(root) if o.startswith('val_dataloader.dataset')]
    opts += [f'train_dataloader.dataset.data_root={root}']
    argv = [CONFIG, ckpt, '--predicate', 'not_contacting', '--within',
            'looking_at', '--cfg-options', *opts]
    result = tool.main(argv)
    model = init_model(CONFIG, ckpt,
                       cfg_options=tool.parse_args(argv).cfg_options)
    dataset = tool.build_test_dataset(model.cfg)
    pos, neg = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        with torch.no_grad():
            p = model.test_step(dict(inputs=[item['inputs']], data_samples=[
                item['data_samples']]))[0]
        for m in range(len(p['obj_labels'])):
            if int(p['attention'][m]) != 0:  # looking_at
                continue
            score = float(p['pred_contacting'][m, 8])  # not_contacting
            (pos if p['contacting'][m, 8] else neg).append(score)
    wins = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    assert result['pairs'] == len(pos) + len(neg) > 0
    assert result['positives'] == len(pos)
    assert result['auc'] == pytest.approx(wins / (len(pos) * len(neg)))
    assert np.isfinite(result['mean_score_negative'])
