# Stage 2: per-domain LoRA in the LM's attention (q_proj, v_proj) with its
# own learning rate `llm_lr`. The LoRA factors stay frozen for the first
# `freeze_llm_epochs` epochs (the projector learns alone, as in stage 1)
# and LLMStageHook switches them on. To continue from a stage-1 run:
#   python tools/train.py configs/llm/llm_demo_stage2_lora.py \
#     --cfg-options load_from=work_dirs/llm_demo_stage1/epoch_30.pth \
#     model.head.heads.language.freeze_llm_epochs=0
# Under DDP/FSDP use freeze_llm_epochs=0 (two runs): a parameter that is
# frozen when the wrapper is built is never synchronised.
#
# A real model instead of the demo LM (any LLaMA / Qwen2 / GPT-2 family
# directory written by save_pretrained, e.g. Qwen2-0.5B or TinyLlama-1.1B;
# with 896-2048 wide embeddings the projector follows the LM's width):
#   llm = dict(type='HFCausalLM', pretrained='/data/Qwen2-0.5B',
#              freeze=True, dtype='bfloat16', with_cp=True, lora=lora)
#   model = dict(head=dict(heads=dict(language=dict(llm=llm))))
#   # 0.5B in bf16 with LoRA: ~1 GB of weights; run with --amp on a GPU
_base_ = ['./llm_demo_stage1.py']

lr = 1e-3  # the optimizer's (encoder, projector, heads)
llm_lr = 2e-4  # the LM's LoRA factors
freeze_llm_epochs = 2

lora = dict(
    type='LoRAAdapter',
    domains=('general', 'sports', 'tutorials', 'news'),
    target_modules=('q_proj', 'v_proj', 'c_attn'),
    rank=8,
    alpha=16.,
    dropout=0.05)
model = dict(
    head=dict(
        heads=dict(
            language=dict(
                llm=dict(lora=lora), freeze_llm_epochs=freeze_llm_epochs))))

optim_wrapper = dict(
    optimizer=dict(lr=lr),
    paramwise_cfg=dict(custom_keys={'.lora_': dict(lr_mult=llm_lr / lr)}))
custom_hooks = [dict(type='LLMStageHook')]
