# The LLM head on the sports domain with LoRA in the LM (stage 2), trained
# end to end in one run: the projector learns alone for freeze_llm_epochs
# epochs (the LR warm-up), then LoRA in the LM's attention joins it with
# its own learning rate llm_lr, so that the LM itself learns to read the
# video prefix (a frozen LM trained on text only answers from its text
# prior; see docs/LANGUAGE_MODELS.md, "Learns, measured"). Its demo LM is
# trained with --context (each text also after its video in words), so
# that it has learnt to read what precedes the prompt:
#   python tools/misc/train_demo_lm.py configs/llm/llm_sports_stage2_lora.py \
#     --context --steps 1000
#   python tools/train.py configs/llm/llm_sports_stage2_lora.py
# From a stage-1 run instead:
#   --cfg-options load_from=work_dirs/llm_sports_stage1/epoch_8.pth \
#     model.head.heads.language.freeze_llm_epochs=0
_base_ = ['./llm_sports_stage1.py']

demo_lm = 'work_dirs/demo_lm_sports_ctx'  # train_demo_lm.py --context

lr = 1e-3  # the optimizer's (encoder, projector, heads)
llm_lr = 1e-3  # the LM's LoRA factors
freeze_llm_epochs = 1

lora = dict(
    type='LoRAAdapter',
    domains=('general', 'sports', 'tutorials', 'news'),
    target_modules=('q_proj', 'k_proj', 'v_proj', 'o_proj'),
    rank=8,
    alpha=16.,
    dropout=0.05)
model = dict(
    head=dict(
        heads=dict(
            language=dict(
                llm=dict(pretrained=demo_lm, lora=lora),
                freeze_llm_epochs=freeze_llm_epochs,
                # each channel of the encoder's tokens standardised
                # (BatchNorm1d over the tokens): an encoder's tokens can be
                # mostly one shared token, which the projector turns into
                # an almost constant prefix that the LM ignores. Batch
                # statistics are per process under DDP (sync_bn='torch' in
                # the config syncs them on GPUs)
                video_norm='batch',
                # 0.3 of the language losses' gradient reaches the encoder
                # (the projector and LoRA learn at full weight): at full
                # weight, the LM's gradient slows the action head; at 0.1
                # the captions are lower (docs/LANGUAGE_MODELS.md)
                encoder_grad_scale=0.3)),
        # the fixed heads' weights (configs/hier_sports.py)
        task_weights=dict(action_detection=0.33, language=0.67)))

optim_wrapper = dict(
    optimizer=dict(lr=lr),
    paramwise_cfg=dict(custom_keys={'.lora_': dict(lr_mult=llm_lr / lr)}))
custom_hooks = [dict(type='LLMStageHook')]
