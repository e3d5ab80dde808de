# The per-frame control of the temporal models on the demo data: STTran's
# demo config with no temporal decoder layer and a window of one frame, so
# each pair is scored from its own frame only (the spatial encoder attends
# among the pairs of that frame; no feature, embedding or attention reaches
# across frames). With temporal_window=2 and no layer a pair would still
# get a learned embedding of its window position, which tells the first and
# last frames of a video from the others: window 1 removes that too.
_base_ = ['./sttran_predcls_demo.py']

model = dict(temporal_layer=0, temporal_window=1)
