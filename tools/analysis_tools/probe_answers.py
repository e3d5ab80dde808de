"""Linear probe of a question's answer from a model's video tokens.

``python tools/analysis_tools/probe_answers.py CONFIG CHECKPOINT
--question "what colour is the object?"`` encodes the videos of the
config's training and test splits (the test pipeline for both: no
augmentation), pools each video's final tokens (mean, max, both) and
fits a linear classifier of the answer on the training videos, then
prints as JSON its accuracy on the test videos beside the majority answer
(:mod:`hvlm.analysis.answer_probe`). ``CHECKPOINT`` ``none`` probes the
untrained encoder.
"""
import argparse
import json

import torch
from mmengine.config import DictAction

from hvlm.analysis.answer_probe import POOLS, answer_probe
from hvlm.apis import init_model
from hvlm.registry import DATASETS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none'")
    parser.add_argument('--question', required=True,
                        help='the question, as the annotations write it')
    parser.add_argument('--train-root',
                        help="the probe's training videos (default: the "
                        "config's train_dataloader data_root)")
    parser.add_argument('--test-root',
                        help="the probe's test videos (default: the "
                        "config's test_dataloader data_root)")
    parser.add_argument('--pools', nargs='+', default=list(POOLS),
                        choices=POOLS)
    parser.add_argument('--steps', type=int, default=200)
    parser.add_argument('--seed', type=int, default=0,
                        help="the untrained weights of 'none'")
    parser.add_argument('--out', help='write the result as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={})
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    checkpoint = None if args.checkpoint == 'none' else args.checkpoint
    torch.manual_seed(args.seed)  # the untrained weights of 'none'
    model = init_model(args.config, checkpoint,
                       cfg_options=args.cfg_options)
    cfg = model.cfg
    sets = []
    for root, loader in ((args.train_root, cfg.train_dataloader),
                         (args.test_root, cfg.test_dataloader)):
        ds = dict(cfg.test_dataloader.dataset)
        ds['data_root'] = root or loader.dataset.data_root
        sets.append(DATASETS.build(ds))
    result = answer_probe(model, *sets, args.question, pools=args.pools,
                          steps=args.steps)
    result.update(question=args.question, checkpoint=args.checkpoint)
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
