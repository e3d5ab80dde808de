# Everything a run needs besides model, data and schedule.
default_scope = 'hvlm'
runner_type = 'HVLMRunner'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    # validation's time/data_time logged as val/time, val/data_time: one
    # x axis (iterations or epochs) per TensorBoard tag
    logger=dict(type='PhaseLoggerHook', interval=20, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # keep epoch_N.pth of the last 3 epochs, and best_*.pth by the metric
    checkpoint=dict(
        type='CheckpointHook',
        interval=1,
        max_keep_ckpts=3,
        save_best='action/frame_top1',
        rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    # decord readers are opened inside the workers, so fork is safe
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # nccl on GPUs; without a GPU hvlm starts gloo itself (HVLMRunner)
    dist_cfg=dict(backend='nccl'),
)

log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)
# scalars go to work_dir/<timestamp>/vis_data: a JSON log and TensorBoard
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, diff_rank_seed=False, deterministic=False)
