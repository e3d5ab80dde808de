"""A small, learnable Action Genome look-alike, written in AG's exact format.

Every video shows one person (a body with a head whose eye shows where it
looks) and one to three objects, drawn as class-specific shapes on a noisy
background. The predicates are computed from what is drawn, so a model can
learn them from the pixels:

- attention: ``looking_at`` when the object lies on the side the eye faces,
  ``not_looking_at`` on the other side, ``unsure`` when it is level with
  the head;
- spatial (the object relative to the person): ``above`` / ``beneath`` from
  the vertical position, ``in_front_of`` / ``behind`` when the boxes overlap
  (drawn over or under the person), ``on_the_side_of`` otherwise; one pair
  can have two (``above`` and ``on_the_side_of``);
- contacting: ``not_contacting`` without contact; an object touching the
  hand is ``holding``, and also ``carrying`` when the person walks (a single
  frame cannot tell ``carrying`` from ``holding``: a temporal model can);
  other contacts are ``touching``.

The awkward cases of the real data are there: invisible objects (no box,
no predicates), frames whose objects are all invisible, frames with an empty
person box array, videos of 1-2 frames (dropped by the loader), tiny boxes
(short edge < 16 px, removed in the ``_filtersmall`` file) and several
spatial or contacting labels on one pair. The layout is the one
:class:`ActionGenomeDataset` documents; ``metadata['set']`` splits the
videos into ``train`` and ``test``.
"""
import os
import os.path as osp
import pickle
from typing import List, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from .demo_cache import ensure_generated

__all__ = [
    'generate_scene_graph_demo', 'ensure_scene_graph_demo', 'AG_OBJECT_FILE',
    'AG_RELATION_FILE', 'DEMO_OBJECTS'
]

GENERATOR_VERSION = 1

# object_classes.txt and relationship_classes.txt as Action Genome spells
# them (no separators; the loader normalises).
AG_OBJECT_FILE = (
    'person', 'bag', 'bed', 'blanket', 'book', 'box', 'broom', 'chair',
    'closetcabinet', 'clothes', 'cupglassbottle', 'dish', 'door', 'doorknob',
    'doorway', 'floor', 'food', 'groceries', 'laptop', 'light', 'medicine',
    'mirror', 'papernotebook', 'phonecamera', 'picture', 'pillow',
    'refrigerator', 'sandwich', 'shelf', 'shoe', 'sofacouch', 'table',
    'television', 'towel', 'vacuum', 'window')
AG_RELATION_FILE = (
    'lookingat', 'notlookingat', 'unsure', 'above', 'beneath', 'infrontof',
    'behind', 'onthesideof', 'in', 'carrying', 'coveredby', 'drinkingfrom',
    'eating', 'haveitontheback', 'holding', 'leaningon', 'lyingon',
    'notcontacting', 'otherrelationship', 'sittingon', 'standingon',
    'touching', 'twisting', 'wearing', 'wiping', 'writingon')

# The demo's objects: pickle name, shape, colour (RGB), size range (px) and
# how often each placement occurs (held, floor, high, side, behind), so the
# class says something about the predicates (a frequency baseline has
# something to count) without deciding them.
DEMO_OBJECTS = {
    'cup/glass/bottle': ('circle', (220, 40, 40), (16, 22), (5, 1, 1, 2, 1)),
    'book': ('rect', (50, 90, 240), (20, 28), (3, 1, 3, 2, 1)),
    'phone/camera': ('square', (30, 30, 30), (16, 20), (5, 1, 1, 2, 1)),
    'bag': ('square', (140, 90, 40), (20, 30), (1, 4, 1, 2, 2)),
    'broom': ('bar', (240, 220, 40), (28, 36), (2, 2, 1, 3, 2)),
    'pillow': ('rect', (245, 245, 245), (22, 30), (1, 2, 3, 2, 2)),
}
_ROLES = ('held', 'floor', 'high', 'side', 'behind')
FRAME_SIZE = (144, 192)  # (H, W) of the written PNG frames


def _plan_video(rng: np.random.Generator, H: int, W: int) -> dict:
    r = rng.random()
    n_frames = 1 if r < 0.04 else 2 if r < 0.1 else int(rng.integers(3, 11))
    walk = rng.random() < 0.5
    person = dict(
        x=float(rng.uniform(0.3, 0.7) * W),
        top=float(rng.uniform(0.25, 0.4) * H),
        height=float(rng.uniform(0.5, 0.6) * H),
        width=float(rng.uniform(18, 24)),
        vx=float(rng.choice([-1, 1]) * rng.uniform(3, 6)) if walk else 0.0,
        face=int(rng.choice([-1, 1])),
        turn=int(rng.integers(1, n_frames + 3)),  # frame where it turns
        shirt=tuple(int(v) for v in rng.integers(60, 200, 3)))
    names = list(DEMO_OBJECTS)
    chosen = rng.choice(len(names), size=int(rng.integers(1, 4)),
                        replace=False)
    objects = []
    for k in chosen:
        name = names[int(k)]
        shape, colour, (lo, hi), prior = DEMO_OBJECTS[name]
        p = np.asarray(prior, float)
        role = _ROLES[int(rng.choice(len(_ROLES), p=p / p.sum()))]
        size = float(rng.uniform(lo, hi))
        if rng.random() < 0.12:  # a tiny box: short edge < 16 px
            size = float(rng.uniform(6, 12))
        objects.append(
            dict(
                name=name,
                shape=shape,
                colour=colour,
                size=size,
                role=role,
                side=int(rng.choice([-1, 1])),
                x=float(rng.uniform(0.08, 0.92) * W),
                hand=float(rng.uniform(0.35, 0.6)),
                hidden=rng.random(n_frames) < 0.1))
    return dict(
        n_frames=n_frames,
        person=person,
        objects=objects,
        empty_person=rng.random(n_frames) < 0.04,
        step=int(rng.integers(3, 8)),
        seed=int(rng.integers(1 << 31)))


def _person_box(p: dict, t: int, W: int) -> np.ndarray:
    """Person box xyxy at frame ``t``; a walker bounces at the edges."""
    span = W - p['width'] - 4
    x = (p['x'] - p['width'] / 2 - 2 + p['vx'] * t) % (2 * span)
    x1 = (x if x <= span else 2 * span - x) + 2
    return np.array([x1, p['top'], x1 + p['width'], p['top'] + p['height']],
                    np.float32)


def _object_box(o: dict, pbox: np.ndarray, H: int, W: int) -> np.ndarray:
    s = o['size']
    w, h = (s * 1.5, s * 0.8) if o['shape'] == 'rect' else (
        s * 0.6, s * 1.3) if o['shape'] == 'bar' else (s, s)
    px1, py1, px2, py2 = pbox
    ph = py2 - py1
    if o['role'] == 'held':  # at the hand, overlapping the body's edge
        cx = px2 + w / 2 - 3 if o['side'] > 0 else px1 - w / 2 + 3
        cy = py1 + o['hand'] * ph
    elif o['role'] == 'behind':  # partly hidden by the body
        cx = (px1 + px2) / 2 + o['side'] * 4
        cy = py1 + 0.45 * ph
    else:
        cx = o['x']
        cy = {'floor': H - h / 2 - 2, 'high': h / 2 + 3,
              'side': py1 + 0.5 * ph}[o['role']]
    box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return np.clip(box, 0, [W - 1, H - 1, W - 1, H - 1]).astype(np.float32)


def _labels(obox: np.ndarray, pbox: np.ndarray, face: int, front: bool,
            moving: bool) -> Tuple[List[str], List[str], List[str]]:
    """Attention, spatial and contacting predicates from the geometry."""
    ox1, oy1, ox2, oy2 = obox
    px1, py1, px2, py2 = pbox
    ph = py2 - py1
    hx = (px1 + px2) / 2
    d = ((ox1 + ox2) / 2 - hx) * face
    attention = ['looking_at' if d > 6 else
                 'not_looking_at' if d < -6 else 'unsure']
    h_overlap = min(ox2, px2) - max(ox1, px1)
    v_overlap = min(oy2, py2) - max(oy1, py1)
    spatial = []
    if oy2 <= py1 + 0.2 * ph:
        spatial.append('above')
    if oy1 >= py2 - 0.15 * ph:
        spatial.append('beneath')
    if h_overlap > 0 and v_overlap > 0:
        spatial.append('in_front_of' if front else 'behind')
    if h_overlap <= 0:
        spatial.append('on_the_side_of')
    touch = h_overlap > -1 and v_overlap > -1
    cy = (oy1 + oy2) / 2
    if not touch:
        contacting = ['not_contacting']
    elif front and py1 + 0.3 * ph <= cy <= py1 + 0.65 * ph:
        contacting = ['holding'] + (['carrying'] if moving else [])
    else:
        contacting = ['touching']
    return attention, spatial, contacting


def _draw_shape(img: np.ndarray, shape: str, box: np.ndarray,
                colour) -> None:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    c = tuple(int(v) for v in colour[::-1])  # BGR
    if shape == 'circle':
        cv2.ellipse(img, ((x1 + x2) // 2, (y1 + y2) // 2),
                    (max((x2 - x1) // 2, 1), max((y2 - y1) // 2, 1)), 0, 0,
                    360, c, -1)
    else:
        cv2.rectangle(img, (x1, y1), (x2, y2), c, -1)
        if shape == 'rect':  # a spine line tells books/pillows from squares
            cv2.line(img, (x1, (y1 + y2) // 2), (x2, (y1 + y2) // 2),
                     (90, 90, 90), 1)


def _draw_person(img: np.ndarray, box: np.ndarray, face: int,
                 shirt) -> None:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    w = x2 - x1
    head_r = max(w // 3, 4)
    hx, hy = (x1 + x2) // 2, y1 + head_r
    cv2.rectangle(img, (x1, y1 + 2 * head_r), (x2, y2), shirt[::-1], -1)
    cv2.circle(img, (hx, hy), head_r, (130, 160, 200), -1)
    cv2.circle(img, (hx + face * head_r // 2, hy - 1), 2, (0, 0, 0), -1)


def _write_video(root: str, vid: str, split: str, plan: dict, H: int,
                 W: int, persons: dict, objects: dict) -> List[str]:
    rng = np.random.default_rng(plan['seed'])
    base = rng.integers(90, 150, 3).astype(np.float32)
    # smooth texture: PNG keeps it small, and boxes stay the only edges
    texture = cv2.resize(rng.normal(0, 10, (H // 16, W // 16)),
                         (W, H)).astype(np.float32)[..., None]
    os.makedirs(osp.join(root, 'frames', vid), exist_ok=True)
    keys = []
    p = plan['person']
    boxes = [_person_box(p, t, W) for t in range(plan['n_frames'] + 1)]
    for t in range(plan['n_frames']):
        key = f'{vid}/{(t + 1) * plan["step"]:06d}.png'
        keys.append(key)
        pbox = boxes[t]
        dx = float(boxes[t + 1][0] - pbox[0])  # motion to the next frame
        moving = abs(dx) > 1.5
        # a walker looks where it goes; a stander turns round once
        face = int(np.sign(dx)) if moving else \
            p['face'] if t < p['turn'] else -p['face']
        img = np.clip(base + texture, 0, 255).astype(np.uint8)
        frame_objs, drawn = [], []
        for o in plan['objects']:
            obox = _object_box(o, pbox, H, W)
            front = o['role'] != 'behind'
            entry = dict(
                metadata=dict(tag=key, set=split),
                visible=not o['hidden'][t],
                bbox=None,
                attention_relationship=None,
                spatial_relationship=None,
                contacting_relationship=None)
            entry['class'] = o['name']
            if entry['visible']:
                a, s, c = _labels(obox, pbox, face, front, moving)
                x1, y1, x2, y2 = (float(v) for v in obox)
                entry.update(
                    bbox=(x1, y1, x2 - x1, y2 - y1),
                    attention_relationship=a,
                    spatial_relationship=s,
                    contacting_relationship=c)
                drawn.append((front, o, obox))
            frame_objs.append(entry)
        for front, o, obox in drawn:  # behind the person first
            if not front:
                _draw_shape(img, o['shape'], obox, o['colour'])
        _draw_person(img, pbox, face, p['shirt'])
        for front, o, obox in drawn:
            if front:
                _draw_shape(img, o['shape'], obox, o['colour'])
        cv2.imwrite(osp.join(root, 'frames', key), img)
        empty = bool(plan['empty_person'][t])
        persons[key] = dict(
            bbox=np.zeros((0, 4), np.float32) if empty else pbox[None],
            bbox_score=np.zeros(0, np.float32) if empty else np.ones(
                1, np.float32),
            bbox_size=(W, H),
            bbox_mode='xyxy',
            keypoints=np.zeros((0 if empty else 1, 17, 3), np.float32))
        objects[key] = frame_objs
    return keys


def generate_scene_graph_demo(root: str,
                              *,
                              seed: int = 0,
                              videos: Tuple[int, int] = (80, 24)) -> str:
    """Write the demo data set under ``root`` in Action Genome's layout.

    Args:
        root (str): Output directory (``annotations/``, ``frames/``).
        seed (int): Seed of every random decision.
        videos (tuple): Videos in the ``train`` and ``test`` sets.

    Returns:
        str: ``root``.
    """
    H, W = FRAME_SIZE
    rng = np.random.default_rng(seed)
    persons, objects, frame_list = {}, {}, []
    index = 0
    for split, count in zip(('train', 'test'), videos):
        for _ in range(int(count)):
            vid = f'D{index:04d}.mp4'
            index += 1
            plan = _plan_video(rng, H, W)
            frame_list += _write_video(root, vid, split, plan, H, W, persons,
                                       objects)
    ann = osp.join(root, 'annotations')
    os.makedirs(ann, exist_ok=True)
    small = {}
    for key, objs in objects.items():
        small[key] = [
            o for o in objs
            if o['bbox'] is None or min(o['bbox'][2], o['bbox'][3]) >= 16
        ]
    for name, data in (('person_bbox.pkl', persons),
                       ('object_bbox_and_relationship.pkl', objects),
                       ('object_bbox_and_relationship_filtersmall.pkl',
                        small)):
        with open(osp.join(ann, name), 'wb') as f:
            pickle.dump(data, f, protocol=4)
    for name, lines in (('frame_list.txt', frame_list),
                        ('object_classes.txt', AG_OBJECT_FILE),
                        ('relationship_classes.txt', AG_RELATION_FILE)):
        with open(osp.join(ann, name), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return root


def ensure_scene_graph_demo(root: str, **kwargs) -> str:
    """Generate the demo at ``root`` unless the same version is there.

    ``root/.complete`` records the generator version and arguments; the data
    is written to a temporary directory and renamed into place under an
    ``fcntl`` lock, so concurrent processes generate it once. A directory
    at ``root`` not written by this function is never overwritten.
    """

    def generate(tmp: str) -> None:
        print_log(f'Generating the scene-graph demo data in {root} '
                  f'(v{GENERATOR_VERSION}, {kwargs})',
                  logger='current')
        generate_scene_graph_demo(tmp, **kwargs)

    return ensure_generated(root, GENERATOR_VERSION, kwargs, generate,
                            'ensure_scene_graph_demo')
