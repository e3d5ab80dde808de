# SceneLLM PredCLS on the demo data (generated on first use under
# data/scene_graph_demo): STTran's demo config (data, schedule) with
# SceneLLM's tokenizer, LM and decoder. The LM is a small LLaMA-style model
# trained here on the demo's scene graphs (one sentence of triplets per
# frame of the training split), once:
#   python tools/misc/train_demo_lm.py \
#       configs/scene_graph/scenellm_predcls_demo.py
#   python tools/train.py configs/scene_graph/scenellm_predcls_demo.py
_base_ = ['./sttran_predcls_demo.py']

llm_path = 'work_dirs/scenellm_demo_lm'  # written by train_demo_lm.py
lr = 1e-3  # the optimizer's
llm_lr = 2e-4  # the LM's LoRA factors
freeze_llm_epochs = 4  # then LoRA trains for the last 6 of 10 epochs

lora = dict(
    type='LoRAAdapter',
    domains=('scene_graph', ),
    target_modules=('q_proj', 'v_proj', 'c_attn'),
    rank=8,
    alpha=16.,
    dropout=0.05)
model = dict(
    type='SceneLLM',
    llm=dict(type='HFCausalLM', pretrained=llm_path, freeze=True, lora=lora),
    # 16 codebooks of 64 entries, each over 8 of the 128 channels (4 of 256
    # or 16 of 256 without restarts: ~58 R@20, see docs/SCENE_GRAPH.md)
    codebook_size=64,
    num_codebooks=16,
    commitment_weight=0.25,
    dead_code_threshold=0.03,  # restart entries in disuse
    codebook_weight=1.0,
    projector='mlp',
    feature_residual=False,  # True: the decoder also reads x (not in paper)
    freeze_llm_epochs=freeze_llm_epochs,
    spatial_layer=1,
    temporal_layer=1)

optim_wrapper = dict(
    optimizer=dict(lr=lr),
    paramwise_cfg=dict(custom_keys={'.lora_': dict(lr_mult=llm_lr / lr)}))
custom_hooks = [
    dict(type='LLMStageHook'),
    dict(type='EarlyStoppingHook', monitor='sg/with_R@20', rule='greater',
         patience=2)
]
