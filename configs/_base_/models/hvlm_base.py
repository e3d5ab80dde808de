# A base-size HierarchicalVLM (ViT-B widths: 768 channels, 12 layers, 12
# heads; two stages of 6 blocks with a 2x2 spatial merge between them), for
# GPUs. Inherit it instead of hvlm_small.py; the heads follow the width.
_base_ = ['./hvlm_small.py']

model = dict(
    backbone=dict(
        patch_size=(2, 16, 16),
        embed_dims=(768, 768),
        depths=(6, 6),
        num_heads=(12, 12),
        drop_path_rate=0.1),
    head=dict(
        heads=dict(
            action_detection=dict(in_channels=768),
            video_qa=dict(in_channels=768),
            video_captioning=dict(in_channels=768))))
