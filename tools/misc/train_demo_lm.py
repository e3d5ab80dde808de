"""Train the small causal LM that the demo LLM configs read, on the text of
the config's training split, and save it where the config expects it.

    python tools/misc/train_demo_lm.py configs/llm/llm_demo_stage1.py \
        [--out DIR] [--steps 300] [--context] [--cfg-options ...]

The demo data is generated first if it is missing. The texts are the
split's questions with their answers and its captions, written with the
LLM head's prompts. ``--out`` defaults to the config's
``model.head.heads.language.llm.pretrained``.

For a SceneLLM config (``configs/scene_graph/scenellm_*``) the texts are the
training split's scene graphs, one sentence of triplets per frame
(``scene_graph_texts``), and ``--out`` defaults to ``model.llm.pretrained``.
"""
import argparse
import sys

from mmengine.config import Config, DictAction


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train a small LM on the demo text for configs/llm/')
    parser.add_argument('config', help='an LLM config, e.g. '
                        'configs/llm/llm_demo_stage1.py')
    parser.add_argument('--out', help='output directory (default: the '
                        "config's LLM directory)")
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--hidden-size', type=int, default=128)
    parser.add_argument('--layers', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--context', action='store_true',
        help='also train on each text after a description of its video in '
        'words (its captions), so that the LM learns to read what comes '
        'before the prompt')
    parser.add_argument(
        '--pack', type=int, default=0,
        help='train on rows of this many tokens, texts joined one after '
        'another (as LMs are pretrained), so that the LM learns to attend '
        'over the distances of a long video prefix; 0: one text per row')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='override config keys')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    from hvlm.analysis.llm_benchmark import llm_head_config
    from hvlm.models.heads.llm_head import DEFAULT_PROMPTS
    from hvlm.models.language.demo_lm import (dataset_texts,
                                              scene_graph_texts,
                                              train_demo_lm)
    from hvlm.registry import DATASETS
    from hvlm.utils import register_all_modules
    register_all_modules()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    if cfg.model.get('type') == 'SceneLLM':
        if args.context:
            raise SystemExit('--context is for LLMHead configs (questions '
                             'and captions after their video in words); '
                             f'{args.config} is a SceneLLM config')
        out = args.out or cfg.model.llm.pretrained
        texts = scene_graph_texts(dataset)
    else:
        head = llm_head_config(cfg)
        out = args.out or head['llm']['pretrained']
        prompts = dict(DEFAULT_PROMPTS, **(head.get('prompts') or {}))
        texts = dataset_texts(dataset, prompts['video_qa'],
                              prompts['video_captioning'],
                              head.get('answer_prefix', ' '), args.context)
    print(f'{len(texts)} texts from {cfg.train_dataloader.dataset.data_root}'
          f', e.g. {texts[0]!r}')
    result = train_demo_lm(
        texts, out, hidden_size=args.hidden_size, num_layers=args.layers,
        steps=args.steps, batch_size=args.batch_size, seed=args.seed,
        pack=args.pack, log=print)
    print(f'saved {int(result["params"])} parameters to {out}; loss '
          f'{result["first_loss"]:.3f} (first 10 steps) -> '
          f'{result["last_loss"]:.3f} (last 10)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
