"""HFVisionEncoder against the transformers model it wraps."""
import pytest
import torch
import torch.nn.functional as F

from hvlm.registry import MODELS
from hvlm.structures import FrameEncoding
from tests.hf_checkpoints import MEAN, STD


def build(path, **kwargs):
    return MODELS.build(dict(type='HFVisionEncoder', pretrained=path,
                             **kwargs))


def reference(model, frames, **kwargs):
    """What transformers itself gives for ``frames [N, C, H, W]``: the
    vision tower's last hidden state and ``get_image_features``."""
    with torch.no_grad():
        states = model.vision_model(
            pixel_values=frames, **kwargs).last_hidden_state
        feats = model.get_image_features(pixel_values=frames, **kwargs)
    if not torch.is_tensor(feats):  # an output object in transformers 5.x
        feats = feats.pooler_output
    return states, feats


@pytest.mark.parametrize('family, prefix', [('clip', 1), ('siglip', 0)])
def test_matches_transformers(hf_dirs, family, prefix):
    path, model = hf_dirs[family]
    encoder = build(path)
    torch.manual_seed(0)
    clips = torch.randn(2, 3, 3, 32, 32)  # [B, C, T, H, W]
    out = encoder(clips)
    assert isinstance(out, FrameEncoding)
    assert out.patch_tokens.shape == (2, 3, 4, 4, 32)
    frames = clips.transpose(1, 2).flatten(0, 1)  # [6, C, H, W]
    states, feats = reference(model, frames)
    # frame (b, t) -> row b*T + t; patch (i, j) -> token prefix + i*w + j
    torch.testing.assert_close(
        out.patch_tokens, states[:, prefix:].reshape(2, 3, 4, 4, 32),
        atol=1e-5, rtol=0)
    torch.testing.assert_close(
        out.embeds, feats.reshape(2, 3, -1), atol=1e-5, rtol=0)
    assert out.embeds.shape[-1] == encoder.out_dims == (
        24 if family == 'clip' else 32)


def test_image_statistics_come_from_the_directory(hf_dirs):
    clip = build(hf_dirs['clip'][0])
    assert clip.pixel_mean == pytest.approx([m * 255 for m in MEAN])
    assert clip.pixel_std == pytest.approx([s * 255 for s in STD])
    assert clip.image_size == (32, 32)
    siglip = build(hf_dirs['siglip'][0])
    assert siglip.pixel_mean == pytest.approx([127.5] * 3)
    assert siglip.pixel_std == pytest.approx([127.5] * 3)


def test_frames_per_pass_changes_nothing(hf_dirs):
    path, _ = hf_dirs['clip']
    clips = torch.randn(1, 3, 5, 32, 32)
    whole = build(path)(clips)
    chunked = build(path, frames_per_pass=2)(clips)
    torch.testing.assert_close(chunked.patch_tokens, whole.patch_tokens,
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(chunked.embeds, whole.embeds, atol=1e-6,
                               rtol=0)


def test_other_sizes_are_resized_to_the_checkpoints(hf_dirs):
    path, model = hf_dirs['clip']
    clips = torch.randn(1, 3, 2, 48, 40)
    out = build(path)(clips)
    assert out.patch_tokens.shape == (1, 2, 4, 4, 32)
    frames = F.interpolate(
        clips.transpose(1, 2).flatten(0, 1), size=(32, 32),
        mode='bilinear', align_corners=False, antialias=True)
    _, feats = reference(model, frames)
    torch.testing.assert_close(out.embeds[0], feats, atol=1e-5, rtol=0)


def test_interpolated_positions_keep_the_frames_size(hf_dirs):
    path, model = hf_dirs['siglip']
    frames = torch.randn(2, 3, 48, 48)  # images: one frame each
    out = build(path, interpolate_pos_encoding=True)(frames)
    assert out.patch_tokens.shape == (2, 1, 6, 6, 32)
    states, feats = reference(model, frames, interpolate_pos_encoding=True)
    torch.testing.assert_close(
        out.patch_tokens[:, 0], states.reshape(2, 6, 6, 32), atol=1e-5,
        rtol=0)
    torch.testing.assert_close(out.embeds[:, 0], feats, atol=1e-5, rtol=0)


def test_wrong_channels_are_refused(hf_dirs):
    encoder = build(hf_dirs['clip'][0])
    with pytest.raises(ValueError, match=r'\[B, 3, T, H, W\]'):
        encoder(torch.randn(1, 1, 2, 32, 32))


@pytest.mark.parametrize('family', ['clip', 'siglip'])
def test_a_directory_of_the_image_tower_alone(hf_dirs, tmp_path, family):
    """model_type clip_vision_model / siglip_vision_model: what the tower
    classes themselves save."""
    import shutil
    from transformers import CLIPVisionModelWithProjection, SiglipVisionModel
    path, _ = hf_dirs[family]
    cls = CLIPVisionModelWithProjection if family == 'clip' else \
        SiglipVisionModel
    tower = cls.from_pretrained(path, local_files_only=True).eval()
    tower.save_pretrained(tmp_path)
    shutil.copy(f'{path}/preprocessor_config.json', tmp_path)
    encoder = build(str(tmp_path))
    assert encoder.key_prefix == ''
    frames = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = tower(pixel_values=frames)
    expected = out.image_embeds if family == 'clip' else out.pooler_output
    torch.testing.assert_close(encoder(frames).embeds[:, 0], expected,
                               atol=1e-5, rtol=0)
