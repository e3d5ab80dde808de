# Stage 1 sharded over the processes with torch's FSDP through mmengine's
# FlexibleRunner: parameters, gradients and optimizer state are split, so a
# model that does not fit one device trains on several. Launch as any hvlm
# run (torchrun / slurm): on one machine with 8 GPUs
#   tools/dist_train.sh configs/llm/llm_demo_stage1_fsdp.py 8
# on several (each node):
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 tools/dist_train.sh \
#     configs/llm/llm_demo_stage1_fsdp.py 8
#   tools/slurm_train.sh PARTITION JOB \
#     configs/llm/llm_demo_stage1_fsdp.py work_dirs/llm_fsdp
# Without a GPU the processes shard on the CPU over gloo (tested with 2).
# Checkpoints are sharded: epoch_N.pth/rank{R}.pth, one per process;
# --resume continues from them with the same number of processes.
# DeepSpeed ZeRO instead, where `deepspeed` is installed:
#   strategy = dict(type='DeepSpeedStrategy', zero_optimization=dict(stage=3))
_base_ = ['./llm_demo_stage1.py']

runner_type = 'HVLMFlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    state_dict_cfg='local',
    # one FSDP unit per LM decoder layer (a real LM: shards gathered one
    # layer at a time); the LM's own gradient checkpointing is
    # model.head.heads.language.llm.with_cp=True
    model_wrapper=dict(
        auto_wrap_policy=dict(
            type='torch.distributed.fsdp.wrap.size_based_auto_wrap_policy',
            min_num_params=int(1e7))))
