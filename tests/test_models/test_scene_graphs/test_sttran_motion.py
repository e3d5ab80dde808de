"""STTran's ``motion_features`` (an hvlm addition): the motion input is the
boxes' displacement against the same (video, class) entity in the
neighbouring frames, computed here again in numpy from the samples; with it
a frame's scores depend on its neighbours' boxes, even with no temporal
layer; SGCLS links entities by the predicted class, never the given one."""
import numpy as np
import torch

from hvlm.registry import MODELS
from hvlm.utils import register_all_modules

register_all_modules(init_default_scope=False)

H, W = 48, 64  # original frame size; the network sees half of it


def _video(rng):
    """Three frames: the person walks right; a cup (class 5) in every
    frame, two cups in frame 1 (the nearer one is the link), a book
    (class 9) in frames 0 and 2 only."""
    person = np.array([[10, 5, 30, 45], [16, 6, 36, 44], [25, 5, 45, 46.]])
    obj_frames = np.array([0, 0, 1, 1, 2, 2])
    obj_labels = np.array([5, 9, 5, 5, 5, 9])
    obj_boxes = np.array([[30, 20, 40, 30], [2, 2, 12, 10],
                          [33, 21, 45, 30], [0, 30, 6, 40],
                          [40, 22, 50, 34], [3, 2, 12, 12.]])
    M = len(obj_frames)
    sample = dict(
        video_id='walk', img_shape=(H, W), scale_factor=(0.5, 0.5),
        person_boxes=torch.tensor(person, dtype=torch.float32),
        obj_frames=torch.from_numpy(obj_frames),
        obj_boxes=torch.tensor(obj_boxes, dtype=torch.float32),
        obj_labels=torch.from_numpy(obj_labels),
        attention=torch.from_numpy(rng.integers(0, 3, M)),
        spatial=torch.from_numpy((rng.random((M, 6)) < .3).astype(np.uint8)),
        contacting=torch.from_numpy(
            (rng.random((M, 17)) < .2).astype(np.uint8)))
    frames = torch.from_numpy(
        rng.integers(0, 255, (3, 3, H // 2, W // 2), dtype=np.uint8))
    return frames, sample


def _numpy_motion(s, scale):
    """Per pair (person, object k): [subject motion, object motion], each
    (prev: dx, dy, dlogw, dlogh, flag, next: the same), by loops."""
    person = s['person_boxes'].numpy().astype(np.float64)
    boxes = s['obj_boxes'].numpy().astype(np.float64)
    frames = s['obj_frames'].numpy()
    labels = s['obj_labels'].numpy()

    def motion(box, others):  # others: {step: [boxes of the entity]}
        out = []
        for step in (-1, 1):
            cands = others[step]
            if not len(cands):
                out += [0.0] * 5
                continue
            c = (box[:2] + box[2:]) / 2
            cc = [(b[:2] + b[2:]) / 2 for b in cands]
            nb = cands[int(np.argmin([((c - x)**2).sum() for x in cc]))]
            a, b = (nb, box) if step < 0 else (box, nb)
            ca, cb = (a[:2] + a[2:]) / 2, (b[:2] + b[2:]) / 2
            out += [(cb[0] - ca[0]) / W * scale, (cb[1] - ca[1]) / H * scale,
                    np.log((b[2] - b[0]) / (a[2] - a[0])),
                    np.log((b[3] - b[1]) / (a[3] - a[1])), 1.0]
        return out

    rows = []
    for k in range(len(boxes)):
        t = frames[k]
        pers = {st: [person[t + st]] if 0 <= t + st < len(person) else []
                for st in (-1, 1)}
        objs = {st: [boxes[j] for j in range(len(boxes))
                     if frames[j] == t + st and labels[j] == labels[k]]
                for st in (-1, 1)}
        rows.append(motion(person[t], pers) + motion(boxes[k], objs))
    return np.array(rows)


def _model(mode='predcls', **kw):
    torch.manual_seed(0)
    cfg = dict(type='STTran', mode=mode, hidden_dim=32, num_heads=4,
               spatial_layer=1, temporal_layer=0, temporal_window=1,
               embed_dim=8, roi_size=3, mask_size=12, dropout=0.0,
               motion_features=True,
               backbone=dict(type='SmallConvNet', channels=(8, 16)))
    cfg.update(kw)
    return MODELS.build(cfg).eval()


def test_motion_input_is_the_hand_computed_displacement():
    frames, s = _video(np.random.default_rng(0))
    model = _model(motion_scale=10.0)
    seen = []
    model.motion_fc.register_forward_hook(
        lambda m, i, o: seen.append(i[0].detach().clone()))
    model([frames], [s], mode='predict')
    want = _numpy_motion(s, 10.0)
    np.testing.assert_allclose(seen[0].numpy(), want, rtol=1e-5, atol=1e-6)
    # first and last frames, the book missing in frame 1: flags 0
    assert want[0, 4] == 0 and want[4, 9] == 0 and want[1, 19] == 0
    assert _model(motion_features=False).motion_fc is None


def test_motion_makes_a_frame_depend_on_its_neighbours_boxes():
    """No temporal layer, window 1: only the motion input crosses frames.
    Moving frame 1's boxes changes frame 0's and frame 2's scores; with the
    motion embedding zeroed it does not."""
    frames, s = _video(np.random.default_rng(1))
    moved = dict(s, person_boxes=s['person_boxes'].clone(),
                 obj_boxes=s['obj_boxes'].clone())
    moved['person_boxes'][1] += torch.tensor([6., 0, 6, 0])
    moved['obj_boxes'][s['obj_frames'] == 1] += torch.tensor([6., 0, 6, 0])
    edge = s['obj_frames'] != 1
    model = _model()

    def scores(m, sample):
        o = m([frames], [sample], mode='predict')[0]
        return torch.cat([o['pred_attention'], o['pred_spatial'],
                          o['pred_contacting']], 1)[edge]

    assert (scores(model, s) - scores(model, moved)).abs().max() > 1e-4
    torch.nn.init.zeros_(model.motion_fc[-1].weight)
    torch.nn.init.zeros_(model.motion_fc[-1].bias)
    torch.testing.assert_close(scores(model, s), scores(model, moved),
                               atol=1e-6, rtol=0)


def test_sgcls_links_by_the_predicted_class_and_trains():
    frames, s = _video(np.random.default_rng(2))
    model = _model('sgcls', temporal_layer=1, temporal_window=2)
    out = model([frames], [s], mode='predict')[0]
    relabelled = dict(s, obj_labels=torch.tensor([7, 8, 11, 12, 13, 14]))
    again = model([frames], [relabelled], mode='predict')[0]
    for k in ('pred_attention', 'pred_spatial', 'pred_contacting'):
        torch.testing.assert_close(out[k], again[k])
    model.train()
    losses = model([frames], [s], mode='loss')
    sum(losses.values()).backward()
    assert model.motion_fc[0].weight.grad.abs().sum() > 0
