# HierarchicalVLM pretrained on every domain of the demo data (or of your
# data: point data_root at a directory in the documented layout).
_base_ = [
    '_base_/models/hvlm_small.py',
    '_base_/datasets/hvlm_demo.py',
    '_base_/schedules/adamw_cosine_30e.py',
    '_base_/default_runtime.py',
]
