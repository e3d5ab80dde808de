# STTran's demo config with motion features (an hvlm addition, not in the
# STTran paper): each pair feature gets an embedding of its subject's and
# object's box displacement and scale change against the same entity
# (video, class) in the previous and next kept frame. The per-frame control
# (sttran_predcls_demo_perframe.py) does not get it. See docs/SCENE_GRAPH.md,
# "Temporal models against a per-frame model".
_base_ = ['./sttran_predcls_demo.py']

model = dict(motion_features=True)
