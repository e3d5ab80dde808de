# STKET's demo config with STTran's motion features (an hvlm addition, not
# in the STKET paper; see sttran_predcls_demo_motion.py).
_base_ = ['./stket_predcls_demo.py']

model = dict(motion_features=True)
