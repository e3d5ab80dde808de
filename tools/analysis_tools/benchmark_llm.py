"""Speed of the LLM head, each figure beside its baseline in the same run.

    python tools/analysis_tools/benchmark_llm.py configs/llm/llm_demo_stage1.py
        [--lm DIR] [--batch-size 2] [--video-tokens 64] [--new-tokens 32]
        [--iters 3] [--warmup 1] [--threads N] [--cfg-options k=v ...]

- generated tokens/s with the KV cache against without it (every step
  re-reads the whole sequence), greedy, and whether both wrote the same
  tokens;
- one training step (loss and backward of the LLM head) with the LM frozen
  (projector only) against LoRA in the LM's attention;
- video tokens per clip with the config's merger against none, and how
  many clips of a video then fit the LM's context beside the prompt and
  the answer.
"""
import argparse
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a config with an LLMHead')
    parser.add_argument('--lm', help="the LM directory (default: the "
                        "config's)")
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--video-tokens', type=int, default=64)
    parser.add_argument('--new-tokens', type=int, default=32)
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, help='torch threads')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='override config entries')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'hvlm'))
    import hvlm.models  # noqa: F401
    from hvlm.analysis.llm_benchmark import benchmark_llm
    from hvlm.analysis.llm_benchmark import llm_head_config
    head = llm_head_config(cfg)
    if args.lm:
        head['llm']['pretrained'] = args.lm
    sample = next(t for t in cfg.train_pipeline if t['type'] == 'SampleFrames')
    crops = [t['crop_size'] for t in cfg.val_pipeline
             if t['type'] == 'CenterCrop']
    size = crops[0] if crops else 64
    result = benchmark_llm(
        head, cfg.model.backbone.to_dict(),
        clip_shape=(sample['clip_len'], size, size),
        num_clips=sample['num_clips'], batch_size=args.batch_size,
        video_tokens=args.video_tokens, new_tokens=args.new_tokens,
        iters=args.iters, warmup=args.warmup, threads=args.threads)
    print(f'{args.config}  LM {head["llm"]["pretrained"]} (context '
          f'{int(result["context_length"])})')
    r = result
    print(f'generation ({args.batch_size} x {args.new_tokens} tokens, '
          f'{args.video_tokens} video tokens):')
    without = r['tokens_per_s_without_cache']
    with_ = r['tokens_per_s_with_cache']
    print(f'  without cache (baseline) {without:9.1f} tokens/s')
    print(f'  with KV cache            {with_:9.1f} tokens/s  '
          f'x{r["cache_speedup"]:.2f}, same tokens: '
          f'{bool(r["cache_same_tokens"])}')
    print('training step (loss + backward of the LLM head):')
    frozen, lora = r['train_step_s_frozen'], r['train_step_s_lora']
    print(f'  LM frozen (baseline) {frozen * 1e3:8.1f} ms  '
          f'{int(r["trainable_params_frozen"])} trainable')
    print(f'  LoRA in the LM       {lora * 1e3:8.1f} ms  '
          f'x{r["lora_step_ratio"]:.2f}, '
          f'{int(r["trainable_params_lora"])} trainable')
    print(f'video tokens (clip {sample["clip_len"]}x{size}x{size}, '
          f'{sample["num_clips"]} clips per video):')
    print(f'  no merging (baseline) {int(r["tokens_per_clip_unmerged"])} '
          f'per clip, {int(r["clips_that_fit_unmerged"])} clips fit')
    print(f'  merged                {int(r["tokens_per_clip_merged"])} '
          f'per clip, {int(r["clips_that_fit_merged"])} clips fit')
    return 0


if __name__ == '__main__':
    sys.exit(main())
