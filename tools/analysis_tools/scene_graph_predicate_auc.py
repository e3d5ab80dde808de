"""How well a trained scene-graph model tells one predicate apart.

``python tools/analysis_tools/scene_graph_predicate_auc.py CONFIG CHECKPOINT
--predicate carrying --within holding`` runs the model on the config's
test data set (PredCLS or SGCLS) and prints, as JSON, the ROC AUC of its
``carrying`` score against the ground truth over the pairs whose ground
truth has ``holding`` (:mod:`hvlm.analysis.predicate_separation` says why
recall cannot show this): 0.5 is chance, 1.0 a perfect ranking.
"""
import argparse
import json

import torch
from mmengine.config import DictAction

from hvlm.analysis.predicate_separation import predicate_separation
from hvlm.apis import init_model
from hvlm.registry import DATASETS


def build_test_dataset(cfg):
    """The config's test data set, with the training root's labels (as
    the runner does)."""
    ds_cfg = dict(cfg.test_dataloader.dataset)
    ds_cfg.setdefault('vocab_root', cfg.train_dataloader.dataset.data_root)
    return DATASETS.build(ds_cfg)


@torch.no_grad()
def predictions(model, dataset):
    model.eval()
    for i in range(len(dataset)):
        item = dataset[i]
        yield model.test_step(dict(inputs=[item['inputs']],
                                   data_samples=[item['data_samples']]))[0]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--predicate', default='carrying')
    parser.add_argument('--within', default='holding',
                        help="only pairs with this ground truth ('' for "
                        'all pairs)')
    parser.add_argument('--out', help='write the result as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={})
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    model = init_model(args.config, args.checkpoint,
                       cfg_options=args.cfg_options)
    dataset = build_test_dataset(model.cfg)
    meta = dataset.metainfo
    result = predicate_separation(
        predictions(model, dataset), args.predicate, args.within or None,
        meta['predicates'], meta.get('predicate_groups') or (3, 6, 17))
    result.update(predicate=args.predicate, within=args.within or None)
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
