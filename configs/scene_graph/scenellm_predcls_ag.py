# SceneLLM, PredCLS (ground-truth boxes and labels) on Action Genome: pair
# features (as STTran's) quantised into scene tokens, frame tokens, a causal
# LM reading them (frozen for `freeze_llm_epochs` epochs, then LoRA with its
# own learning rate `llm_lr`), and STTran's blocks and relation head
# decoding the graph from the LM's states (docs/SCENE_GRAPH.md#scenellm).
#
# The LM is a local directory written by save_pretrained (`llm_path`). No
# weights can be downloaded here; the default is the small LM that
#   python tools/misc/train_demo_lm.py \
#       configs/scene_graph/scenellm_predcls_ag.py \
#       --cfg-options train_dataloader.dataset.data_root=/data/ag
# trains on the training split's scene graphs (one sentence of triplets per
# frame). A real model instead (any LLaMA / Qwen2 / GPT-2 family directory,
# e.g. Qwen2-0.5B or TinyLlama-1.1B; the projector follows its width):
#   llm_path = '/data/Qwen2-0.5B'
#   llm = dict(type='HFCausalLM', pretrained=llm_path, freeze=True,
#              dtype='bfloat16', with_cp=True, lora=lora)
#   # 0.5B in bf16 with LoRA: ~1 GB of weights; run with --amp on a GPU.
#   # The whole LM is saved in every checkpoint.
_base_ = ['./sttran_predcls_ag.py']

llm_path = 'work_dirs/scenellm_demo_lm'
lr = 5e-5  # the optimizer's (backbone, tokenizer, projector, decoder)
llm_lr = 1e-6  # the LM's LoRA factors
freeze_llm_epochs = 3

lora = dict(
    type='LoRAAdapter',
    domains=('scene_graph', ),
    target_modules=('q_proj', 'v_proj', 'c_attn'),
    rank=8,
    alpha=16.,
    dropout=0.05)
llm = dict(type='HFCausalLM', pretrained=llm_path, freeze=True, lora=lora)
model = dict(
    type='SceneLLM',
    llm=llm,
    codebook_size=512,
    num_codebooks=16,  # each over 16 of the 256 channels
    commitment_weight=0.25,
    dead_code_threshold=0.03,  # restart entries in disuse
    codebook_weight=1.0,
    projector='mlp',
    feature_residual=False,
    freeze_llm_epochs=freeze_llm_epochs,
    # the graph decoder after the LM
    spatial_layer=1,
    temporal_layer=1)

optim_wrapper = dict(
    optimizer=dict(lr=lr),
    paramwise_cfg=dict(custom_keys={'.lora_': dict(lr_mult=llm_lr / lr)}))
custom_hooks = [
    dict(type='LLMStageHook'),
    dict(type='EarlyStoppingHook', monitor='sg/with_R@20', rule='greater',
         patience=3)
]
