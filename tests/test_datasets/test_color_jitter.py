"""ColorJitter: one draw per video, the same on every frame, the documented
brightness -> contrast -> saturation math."""
import numpy as np

from hvlm.registry import TRANSFORMS


def reference(img, b, c, s):
    """The three blends written out per pixel, in float64."""
    x = img.astype(np.float64) * b
    w = np.array([0.299, 0.587, 0.114])
    m = (x @ w).mean()
    x = m + c * (x - m)
    g = (x @ w)[..., None]
    x = g + s * (x - g)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def test_color_jitter_per_video():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    video = np.stack([frame, frame, frame])  # [N=3, H, W, 3]
    jitter = TRANSFORMS.build(dict(type='ColorJitter', brightness=0.3,
                                   contrast=0.3, saturation=0.3))
    np.random.seed(1)
    out = jitter.transform(dict(imgs=video.copy()))
    b, c, s = out['color_jitter']
    assert all(0.7 <= f <= 1.3 for f in (b, c, s))
    assert (out['imgs'] == out['imgs'][:1]).all()  # one draw, all frames
    expect = reference(frame, b, c, s)
    assert np.abs(out['imgs'][0].astype(int) - expect).max() <= 1
    other = jitter.transform(dict(imgs=video.copy()))['color_jitter']
    assert other != (b, c, s)  # the next video draws again
