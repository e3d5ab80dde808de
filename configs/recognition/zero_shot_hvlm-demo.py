# Zero-shot on hvlm's demo data: class features from the template
# ensemble, no training. With no checkpoint:
#   python tools/test.py configs/recognition/zero_shot_hvlm-demo.py none \
#     --cfg-options model.pretrained=work_dirs/vtc_general/hf_export
_base_ = ['./video_coop_hvlm-demo_8shot.py']
model = dict(prompt_learner=None, temporal_pooling='mean')
temporal_pooling = 'mean'
ctx_len = None
