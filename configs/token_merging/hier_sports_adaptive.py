# hier_sports with content-aware token merging (motion + saliency + ToMe
# matching) between the two stages instead of the fixed 2x2 pooling.
_base_ = ['../hier_sports.py']

model = dict(
    backbone=dict(
        merger=dict(
            _delete_=True,
            type='AdaptiveTokenMerger',
            motion=dict(enabled=True, window_size=15, normalize=True),
            saliency=dict(enabled=True, edge=True, attention=True,
                          color=True),
            adaptive_merging=dict(
                target_compression_ratio=0.5,
                min_compression_ratio=0.25,
                max_compression_ratio=1.0))))
