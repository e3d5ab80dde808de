# hier_sports with content-aware token merging (motion + saliency + ToMe
# matching) instead of the fixed 2x2 pooling between the stages. Tokens
# merge right after the first block, ToMe-style inside stage 1, so that
# every later block runs on the kept half; the merger's plan (mode 'first')
# spends the whole ratio there. Other merge points are listed in
# merge_after, e.g. (0, 1, 2) with mode='uniform' or 'front'.
_base_ = ['../hier_sports.py']

model = dict(
    backbone=dict(
        merge_after=(0, ),
        merger=dict(
            _delete_=True,
            type='AdaptiveTokenMerger',
            motion=dict(enabled=True, window_size=15, normalize=True),
            saliency=dict(enabled=True, edge=True, attention=True,
                          color=True),
            strength=8.0,
            adaptive_merging=dict(
                target_compression_ratio=0.5,
                min_compression_ratio=0.25,
                max_compression_ratio=1.0,
                mode='first'))))
