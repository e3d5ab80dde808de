"""HierarchicalVideoEncoder on stem tokens read from a feature cache
(``frame_tokens=``) instead of frames."""
import pytest
import torch

from tests.test_models.test_backbones.test_pretrained_stem import (
    ADAPTIVE, build)


@pytest.mark.parametrize('family', ['clip', 'siglip'])
def test_frame_tokens_give_the_features_of_the_frames(hf_dirs, family):
    encoder = build(hf_dirs[family][0],
                    merger=dict(type='SpatialPoolMerger', kernel=(1, 2, 2)))
    encoder.eval()
    clips = torch.randn(2, 3, 3, 32, 32)  # 3 frames: t=2 ends short
    with torch.no_grad():
        tokens = encoder.patch_embed.encoder(clips).patch_tokens
        live = encoder(clips)
        cached = encoder(None, frame_tokens=tokens)
    assert cached.num_frames == live.num_frames == 3
    assert cached.grid == live.grid
    torch.testing.assert_close(cached.tokens, live.tokens)
    assert torch.equal(cached.index, live.index)


def test_what_a_cache_cannot_stand_for_is_refused(hf_dirs):
    path = hf_dirs['clip'][0]
    tokens = build(path).patch_embed.encoder(
        torch.randn(1, 3, 2, 32, 32)).patch_tokens  # [1, 2, h, w, C]
    with pytest.raises(ValueError, match='motion/saliency'):
        build(path, merger=dict(ADAPTIVE))(None, frame_tokens=tokens)
    with pytest.raises(ValueError, match='trainable weights'):
        build(path, stem=dict(type='HFVisionEncoder', pretrained=path,
                              unfreeze=['*layers.0.*']))(
                                  None, frame_tokens=tokens)
    with pytest.raises(ValueError, match=r'\[B, T, h, w, \d+\], got'):
        build(path)(None, frame_tokens=tokens[..., :-1])
    with pytest.raises(ValueError, match='pretrained stem'):
        build(path, stem=None, patch_size=(2, 8, 8))(
            None, frame_tokens=tokens)
    with pytest.raises(ValueError, match='got None'):
        build(path)(None)
