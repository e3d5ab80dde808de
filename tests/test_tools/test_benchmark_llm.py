"""benchmark_llm's figures: what it counts is checked against the model,
not its timings."""
import hvlm.models  # noqa: F401
from hvlm.analysis.llm_benchmark import benchmark_llm
from tests.hf_causal_lms import save_tiny_lm


def test_counts_beside_the_timings(tmp_path):
    save_tiny_lm(str(tmp_path), 'llama')
    head = dict(type='LLMHead', in_channels=16, tasks=('video_qa', ),
                llm=dict(type='HFCausalLM', pretrained=str(tmp_path)))
    backbone = dict(type='HierarchicalVideoEncoder', in_channels=3,
                    patch_size=(2, 8, 8), embed_dims=(8, 16), depths=(1, 1),
                    num_heads=(2, 2),
                    merger=dict(type='SpatialPoolMerger', kernel=(1, 2, 2)))
    r = benchmark_llm(head, backbone, clip_shape=(4, 32, 32), num_clips=2,
                      batch_size=2, video_tokens=8, new_tokens=4, iters=1,
                      warmup=0)
    assert r['cache_same_tokens'] == 1.
    assert r['tokens_per_s_with_cache'] > 0 < r['tokens_per_s_without_cache']
    # 2x4x4 tubelets per clip, pooled 2x2 in space by the merger
    assert (r['tokens_per_clip_unmerged'], r['tokens_per_clip_merged']) == \
        (32., 8.)
    room = 64 - r['prompt_tokens'] - 4  # context - prompt - answer
    assert r['clips_that_fit_merged'] == room // 8
    assert r['clips_that_fit_unmerged'] == room // 32
    # LoRA rank 8 on q_proj (32 -> 32) and v_proj (32 -> 16), 2 layers
    lora = 2 * 8 * ((32 + 32) + (32 + 16))
    assert r['trainable_params_lora'] - r['trainable_params_frozen'] == lora
