# The LLM head on the sports domain with the whole LM trained (LLaVA's
# stage 2 trains all of the LM's weights, not LoRA): the projector learns
# alone for freeze_llm_epochs epochs, then every weight of the LM joins
# it at llm_lr; step tokens ('max') give the LM the video's course, and
# its states there learn the frames' actions (step_loss). On the
# demo data this answers the last action of a video as the fixed-vocabulary
# heads do, where LoRA alone underfits the questions (docs/
# LANGUAGE_MODELS.md, "How the video tokens are read").
# A real 0.5-1.5B LM trained whole needs the memory of FSDP
# (llm_demo_stage1_fsdp.py) and llm_lr near 2e-5, as LLaVA uses.
#   python tools/misc/train_demo_lm.py configs/llm/llm_sports_stage2_lora.py \
#     --context --steps 1000
#   python tools/train.py configs/llm/llm_sports_stage2_full.py
_base_ = ['./llm_sports_stage2_lora.py']

lr = 1e-3  # the optimizer's (encoder, projector, heads)
llm_lr = 1e-3  # every weight of the demo LM

model = dict(
    head=dict(
        heads=dict(
            language=dict(
                llm=dict(lora=None, freeze=False),
                # one token per time step, each step's maximum over its
                # tubelets (the action head's frame feature): from these
                # the LM reads the video's course (the last action, the count)
                step_tokens='max',
                # the LM's first-layer states at the step tokens predict
                # where actions start and each frame's class (as many
                # classes as the action head)
                step_loss=dict(num_classes=150, layer=1, loss_weight=0.5)))))

# the LM's weights (names ...language.llm.model....) at llm_lr
optim_wrapper = dict(
    optimizer=dict(lr=lr),
    paramwise_cfg=dict(custom_keys={'.llm.model.': dict(lr_mult=llm_lr / lr)}))
