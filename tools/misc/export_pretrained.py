"""Export a trained model as a Hugging Face directory.

    python tools/misc/export_pretrained.py CONFIG CHECKPOINT --out DIR \
        [--cfg-options ...] [--overwrite]

For models with ``save_pretrained`` (``VideoTextContrastive``: a CLIP
directory with config.json, model.safetensors, tokenizer and
preprocessor_config.json, which ``HFVisionEncoder`` / ``HFTextEncoder`` and
``transformers.CLIPModel`` load). The checkpoint must fit the config's model
exactly: a mismatch names the keys and nothing is written.
"""
import argparse
import sys

from mmengine.config import Config

from hvlm.registry import MODELS
from hvlm.utils import CheckpointLoadError, load_from_local, \
    register_all_modules
from hvlm.utils.checkpoint_fit import load_fitting_weights
from hvlm.utils.cli import CfgOptionsAction, exit_on_config_error


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write a checkpoint as a Hugging Face directory')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('--out', required=True, help='directory to write')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace an earlier export in --out (other files are refused)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        default={}, help='override config keys')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    with exit_on_config_error('export_pretrained.py'):
        cfg = Config.fromfile(args.config)
        cfg.merge_from_dict(args.cfg_options)
    register_all_modules()
    model = MODELS.build(cfg.model)
    if not hasattr(model, 'save_pretrained'):
        print(f'export_pretrained.py: {type(model).__name__} of '
              f'{args.config} has no Hugging Face export', file=sys.stderr)
        return 2
    try:
        checkpoint = load_from_local(args.checkpoint, map_location='cpu')
        load_fitting_weights(model, checkpoint, args.checkpoint,
                             what=f'the model of {args.config}')
    except CheckpointLoadError as e:
        print(f'export_pretrained.py: {e}', file=sys.stderr)
        return 1
    try:
        path = model.save_pretrained(args.out, overwrite=args.overwrite)
    except FileExistsError as e:
        print(f'export_pretrained.py: {e}', file=sys.stderr)
        return 1
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
