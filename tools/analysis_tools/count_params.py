"""Count a config's model parameters: total and trainable.

    python tools/analysis_tools/count_params.py CONFIG [--cfg-options k=v ...]
        [--json out.json]

The model is built with its parameters on the meta device (no memory, no
checkpoint), so freezing set in the config (``model.adapter.freeze_base``)
shows in the trainable count. For example, rank-8 LoRA on the base-size
model, training one domain:

    python tools/analysis_tools/count_params.py \\
        configs/_base_/models/hvlm_base.py --cfg-options \\
        model.adapter.type=LoRAAdapter model.adapter.freeze_base=True \\
        model.adapter.train_domains=sports
"""
import argparse
import json
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from hvlm.analysis import build_model_on_meta, count_parameters, format_counts


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Count total and trainable parameters of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override config entries, e.g. model.adapter.rank=4')
    parser.add_argument('--json', help='also write the counts to this file')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    if 'model' not in cfg:
        print(f'{args.config} has no model', file=sys.stderr)
        return 2
    init_default_scope(cfg.get('default_scope', 'hvlm'))
    counts = count_parameters(build_model_on_meta(cfg.model))
    print(f'{args.config}')
    print(format_counts(counts))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(counts, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
