"""Evaluate the frequency baseline of a scene-graph config.

``python tools/analysis_tools/scene_graph_baseline.py CONFIG [--out F]``
counts predicates per object class on the config's training dataset and
scores its test dataset with them (PredCLS), through the config's
``test_evaluator`` (SceneGraphRecall). No frame is read.
"""
import argparse
import json

from mmengine.config import Config, DictAction

from hvlm.models.scene_graphs import FrequencyBaseline
from hvlm.registry import DATASETS, METRICS
from hvlm.utils import register_all_modules


def dataset_without_frames(cfg: dict):
    cfg = dict(cfg)
    cfg['pipeline'] = []  # data infos only
    return DATASETS.build(cfg)


def evaluate(cfg: Config) -> dict:
    train = dataset_without_frames(cfg.train_dataloader.dataset)
    test_cfg = dict(cfg.test_dataloader.dataset)
    test_cfg.setdefault('vocab_root', cfg.train_dataloader.dataset.data_root)
    test = dataset_without_frames(test_cfg)
    model = FrequencyBaseline(num_classes=len(train.metainfo['classes']))
    model.fit(train.get_data_info(i) for i in range(len(train)))
    metric = METRICS.build(cfg.test_evaluator)
    metric.process(None, model.predict(
        test.get_data_info(i) for i in range(len(test))))
    return metric.evaluate(len(test))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--out', help='write the metrics as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    metrics = evaluate(cfg)
    print(json.dumps(metrics, indent=1))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(metrics, f, indent=1)


if __name__ == '__main__':
    main()
