"""Write an SGDET detections file from Action Genome's ground truth.

    python tools/misc/write_gt_detections.py DATA_ROOT OUT \
        [--mode sgdet] [--jitter 0.05] [--drop 0.1] [--false-positives 0.5] \
        [--seed 0] [--overwrite]

Every frame of ``DATA_ROOT/annotations`` gets its person box and visible
objects as detections, each dropped with probability ``--drop``, its edges
moved by normal noise of ``--jitter`` x the box size, plus a Poisson
(``--false-positives``) number of random boxes per frame. ``OUT`` is a
``.npz`` or ``.json`` file in the format any detector can write
(:mod:`hvlm.datasets.scene_graph_detections`); point an SGDET config's
``detections_file`` at it. With ``--jitter 0 --drop 0 --false-positives 0``
the detections are the ground truth (an upper bound for SGDET). The
annotations are read, never changed.
"""
import argparse
import json
import os.path as osp
import sys

from hvlm.datasets.scene_graph_detections import detections_from_ground_truth


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write SGDET detections from the ground truth')
    parser.add_argument('data_root', help='Action Genome root (annotations/)')
    parser.add_argument('out', help='output file, .npz or .json')
    parser.add_argument('--mode', default='sgdet',
                        choices=('predcls', 'sgcls', 'sgdet'),
                        help='sgcls/sgdet read the _filtersmall objects')
    parser.add_argument('--jitter', type=float, default=0.05,
                        help='std of each edge shift, x the box size')
    parser.add_argument('--drop', type=float, default=0.1,
                        help='probability a ground-truth box is missed')
    parser.add_argument('--false-positives', type=float, default=0.5,
                        help='mean random boxes added per frame')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true',
                        help='replace OUT if it exists')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if osp.exists(args.out) and not args.overwrite:
        print(f'write_gt_detections.py: {args.out} exists; pass '
              '--overwrite to replace it', file=sys.stderr)
        return 1
    counts = detections_from_ground_truth(
        args.data_root, args.out, mode=args.mode, jitter=args.jitter,
        drop=args.drop, false_positives=args.false_positives,
        seed=args.seed)
    print(json.dumps(dict(counts, out=args.out)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
