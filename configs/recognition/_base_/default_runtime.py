_base_ = ['../../_base_/default_runtime.py']
default_hooks = dict(
    checkpoint=dict(save_best='recog/top1', rule='greater',
                    max_keep_ckpts=1))
