# Open-ended video QA and dense captioning by a causal LM behind the
# hierarchical encoder, stage 1: the LM is frozen and only the encoder,
# the projector into the LM's embeddings and the action head learn.
#
# The LM is a directory written by save_pretrained. No weights can be
# downloaded here, so the demo uses a small LM trained on the demo text
# first (once; it also generates the demo data if needed):
#   python tools/misc/train_demo_lm.py configs/llm/llm_demo_stage1.py
#   python tools/train.py configs/llm/llm_demo_stage1.py
# Stage 2 (LoRA on the LM) is llm_demo_stage2_lora.py. See
# docs/LANGUAGE_MODELS.md.
_base_ = ['../hier_general.py']

demo_lm = 'work_dirs/demo_lm'  # written by tools/misc/train_demo_lm.py

llm = dict(type='HFCausalLM', pretrained=demo_lm, freeze=True)
model = dict(
    head=dict(
        _delete_=True,
        type='MultiTaskHead',
        heads=dict(
            action_detection=dict(
                type='ActionDetectionHead',
                in_channels=192,
                num_classes=150,
                dropout=0.1,
                smooth_window=3),
            # QA and captions from one LM: pred_qa (text) and pred_captions
            language=dict(
                type='LLMHead',
                in_channels=192,
                llm=llm,
                tasks=('video_qa', 'video_captioning'),
                projector='mlp',
                # 4 clips x 32 merged tokens = 128 video tokens per video;
                # a longer video is cut to evenly spaced tokens
                overflow='truncate',
                generation=dict(strategy='greedy', max_new_tokens=16))),
        task_weights=dict(action_detection=0.33, language=0.67)))

# An LM with tied input and output embeddings (GPT-2, the demo LMs, small
# Qwen2 models) holds one weight in two modules: trained in full
# (llm.freeze=False), mmengine's optimizer constructor would put it in two
# parameter groups and fail ("some parameters appear in more than one
# parameter group"); bypass_duplicate keeps its first occurrence.
optim_wrapper = dict(paramwise_cfg=dict(bypass_duplicate=True))

# answers are text: VideoQAMetric scores them by normalised exact match
val_evaluator = [
    dict(type='FrameActionMetric'),
    dict(type='TemporalActionDetectionMetric'),
    dict(type='VideoQAMetric'),
    dict(type='CaptionMetric'),
]
test_evaluator = val_evaluator
