# hier_sports with plain ToMe bipartite matching (motion and saliency off):
# the content-blind baseline of hier_sports_adaptive.py.
_base_ = ['./hier_sports_adaptive.py']

model = dict(
    backbone=dict(
        merger=dict(
            motion=dict(_delete_=True, enabled=False),
            saliency=dict(_delete_=True, enabled=False))))
