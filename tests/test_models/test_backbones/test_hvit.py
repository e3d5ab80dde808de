"""HViT: shapes, positions, stages, drop path, attention from the registry,
gradient checkpointing, frames, patch merging and DFCA streams."""
import numpy as np
import pytest
import torch

from hvlm.models.backbones.hvit import (PatchMerging, frame_differences,
                                        interpolate_pos_embed, pseudo_ndvi)
from hvlm.registry import ATTENTIONS, MODELS

TINY = dict(
    type='HViT',
    img_size=32,
    patch_size=4,
    embed_dim_rgb=8,
    depths=(1, 2, 1),
    num_heads=(1, 2, 2),
    drop_path_rate=0.)


def build(**kwargs):
    return MODELS.build(dict(TINY, **kwargs)).eval()


def test_default_architecture():
    model = MODELS.build(dict(type='HViT'))
    assert model.embed_dims == (96, 192, 384, 768)
    assert [len(s) for s in model.stages] == [2, 2, 6, 2]
    assert [s[0].attn.num_heads for s in model.stages] == [3, 6, 12, 24]
    assert model.patch_embed.kernel_size == (16, 16)
    assert model.pos_embed.shape == (1, 14 * 14, 96)
    # drop path rises linearly from 0 to drop_path_rate over all 12 blocks
    rates = [
        getattr(b.drop_path, 'drop_prob', 0.) for s in model.stages
        for b in s
    ]
    np.testing.assert_allclose(rates, np.linspace(0, 0.1, 12), atol=1e-6)


def test_images_and_frames():
    model = build()
    img = torch.randn(2, 3, 32, 32)
    assert model(img).shape == (2, 32)
    tokens, grid = model.forward_tokens(img)
    assert grid == (2, 2) and tokens.shape == (2, 4, 32)
    # frames are encoded one by one: [B, T, ...] equals the flattened images
    frames = torch.randn(2, 3, 3, 32, 32)
    out = model(frames)
    assert out.shape == (2, 3, 32)
    torch.testing.assert_close(out, model(frames.flatten(0, 1)).view(2, 3, 32))
    with pytest.raises(ValueError, match='channels'):
        model(torch.randn(1, 4, 32, 32))


def test_positions_interpolated_to_new_sizes():
    pos = torch.randn(1, 16, 5)
    assert interpolate_pos_embed(pos, (4, 4)) is pos
    # a constant table stays constant; shapes follow the grid
    const = torch.full((1, 16, 5), 0.3)
    out = interpolate_pos_embed(const, (6, 3))
    assert out.shape == (1, 18, 5)
    torch.testing.assert_close(out, torch.full_like(out, 0.3))
    # a model trained at 32 runs at 48x40, its positions interpolated
    model = build()
    assert model(torch.randn(1, 3, 48, 40)).shape == (1, 32)
    # the positions are really added: changing them changes the output
    img = torch.randn(1, 3, 32, 32)
    before = model(img)
    with torch.no_grad():
        # a constant shift of every channel would vanish in the LayerNorms
        model.pos_embed.add_(torch.randn_like(model.pos_embed))
    assert not torch.allclose(before, model(img))


def test_patch_merging_matches_reference():
    torch.manual_seed(0)
    merge = PatchMerging(3, 6)
    x = torch.randn(2, 5 * 3, 3)  # odd grid 5x3: padded to 6x4
    out, grid = merge(x, (5, 3))
    assert grid == (3, 2)
    g = np.zeros((2, 6, 4, 3), np.float32)
    g[:, :5, :3] = x.reshape(2, 5, 3, 3).numpy()
    cat = np.concatenate(
        [g[:, 0::2, 0::2], g[:, 1::2, 0::2], g[:, 0::2, 1::2],
         g[:, 1::2, 1::2]], -1).reshape(2, 6, 12)
    mu = cat.mean(-1, keepdims=True)
    var = cat.var(-1, keepdims=True)
    normed = (cat - mu) / np.sqrt(var + 1e-5)
    normed = normed * merge.norm.weight.detach().numpy() + \
        merge.norm.bias.detach().numpy()
    ref = normed @ merge.reduction.weight.detach().numpy().T
    np.testing.assert_allclose(out.detach().numpy(), ref, atol=1e-5)


def test_attention_comes_from_the_registry():
    full = build()
    local = build(attention=dict(type='LocalGlobalAttention',
                                 window_size=4, num_global=1))
    assert type(local.stages[0][0].attn).__name__ == 'LocalGlobalAttention'
    # same parameter names: a FullAttention checkpoint loads into it
    local.load_state_dict(full.state_dict())
    img = torch.randn(2, 3, 32, 32)
    # 64 tokens in stage 1 with a window of 4: not global, so it differs
    assert not torch.allclose(full(img), local(img), atol=1e-4)


def test_gradient_checkpointing_same_values_and_grads():
    torch.manual_seed(0)
    plain = build().train()
    cp = build(with_cp=True).train()
    cp.load_state_dict(plain.state_dict())
    img = torch.randn(2, 3, 32, 32)
    out_plain, out_cp = plain(img), cp(img)
    torch.testing.assert_close(out_plain, out_cp)
    out_plain.square().sum().backward()
    out_cp.square().sum().backward()
    for (name, p), q in zip(plain.named_parameters(), cp.parameters()):
        assert q.grad is not None, name
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_dfca_matches_its_formula():
    torch.manual_seed(0)
    layer = ATTENTIONS.build(
        dict(type='DFCA', embed_dims=4, num_heads=2, num_mask_tokens=2))
    x, mem = torch.randn(2, 5, 4), torch.randn(2, 3, 4)
    out = layer(x, memory=mem)

    def ln(a, mod):
        a = (a - a.mean(-1, keepdims=True)) / np.sqrt(
            a.var(-1, keepdims=True) + 1e-5)
        return a * mod.weight.detach().numpy() + mod.bias.detach().numpy()

    def lin(a, mod):
        return a @ mod.weight.detach().numpy().T + mod.bias.detach().numpy()

    xn, keys = x.numpy(), np.concatenate(
        [mem.numpy(), np.repeat(layer.mask_embed.detach().numpy(), 2, 0)],
        1)  # [2, 5, 4]
    q, kv = lin(xn, layer.q), lin(keys, layer.kv)
    k, v = kv[..., :4], kv[..., 4:]
    heads = []
    for h in range(2):
        sl = slice(2 * h, 2 * h + 2)
        logits = q[..., sl] @ k[..., sl].transpose(0, 2, 1) / np.sqrt(2)
        w = np.exp(logits - logits.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        heads.append(w @ v[..., sl])
    y = ln(xn + lin(np.concatenate(heads, -1), layer.proj), layer.norm1)
    hidden = lin(y, layer.ffn[0])
    hidden = 0.5 * hidden * (1 + np.vectorize(__import__('math').erf)(
        hidden / np.sqrt(2)))
    ref = ln(y + lin(hidden, layer.ffn[3]), layer.norm2)
    np.testing.assert_allclose(out.detach().numpy(), ref, atol=1e-5)
    with pytest.raises(ValueError, match='memory'):
        layer(x)


def test_dfca_streams():
    with pytest.raises(ValueError, match='no second stream'):
        build(use_dfca=True)
    with pytest.raises(ValueError, match='stream_channels'):
        build(use_dfca=True, dfca=dict(stream='spectral'))
    # spectral: 3 RGB channels + 2 bands; changing a band changes the output
    model = build(use_dfca=True, dfca=dict(stream='spectral',
                                           stream_channels=2))
    x = torch.rand(1, 5, 32, 32)
    y = x.clone()
    y[:, 3:] += 1
    assert model(x).shape == (1, 32)
    assert not torch.allclose(model(x), model(y))
    with pytest.raises(ValueError, match='5 channels'):
        model(torch.rand(1, 3, 32, 32))
    # ndvi from un-normalised pixels
    rgb = torch.tensor([0.2, 0.6, 0.1]).view(1, 3, 1, 1)
    torch.testing.assert_close(pseudo_ndvi(rgb),
                               torch.tensor((0.6 - 0.2) / 0.8).view(1, 1, 1, 1))
    model = build(use_dfca=True, dfca=dict(stream='ndvi',
                                           pixel_mean=[0.5] * 3,
                                           pixel_std=[0.25] * 3))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 32)
    # motion: frame differences, needs video
    frames = torch.randn(1, 3, 2, 2, 2)
    diff = frame_differences(frames)
    torch.testing.assert_close(diff[:, 0], torch.zeros(1, 2, 2, 2))
    torch.testing.assert_close(diff[:, 2], frames[:, 2] - frames[:, 1])
    model = build(use_dfca=True, dfca=dict(stream='motion'))
    still = torch.rand(1, 1, 3, 32, 32).expand(1, 3, 3, 32, 32)
    moving = still.clone()
    moving[:, 2] += 0.5
    a, b = model(still), model(moving)
    # frame 1 is the same image and has the same difference to frame 0
    torch.testing.assert_close(a[:, 1], b[:, 1])
    assert not torch.allclose(a[:, 2], b[:, 2])
    with pytest.raises(ValueError, match='video'):
        model(torch.rand(1, 3, 32, 32))


def test_pretrained_hvit_as_the_video_encoders_stem(tmp_path):
    simclr = MODELS.build(dict(type='SimCLR', backbone=dict(
        TINY, depths=(1, 1), num_heads=(1, 2))))
    path = str(tmp_path / 'simclr.pth')
    torch.save(dict(state_dict=simclr.state_dict()), path)
    stem = dict(type='HViTFrameEncoder', pretrained=path,
                backbone=dict(TINY, depths=(1, 1), num_heads=(1, 2)))
    encoder = MODELS.build(dict(
        type='HierarchicalVideoEncoder', patch_size=1, embed_dims=(16, ),
        depths=(1, ), num_heads=(2, ), merger=None, stem=stem)).eval()
    frame_encoder = encoder.patch_embed.encoder
    assert frame_encoder.patch_size == 8 and frame_encoder.embed_dims == 16
    assert not any(p.requires_grad for p in frame_encoder.parameters())
    clips = torch.randn(2, 3, 3, 32, 32)  # [B, C, T, H, W]
    enc = frame_encoder(clips)
    assert enc.patch_tokens.shape == (2, 3, 4, 4, 16)
    # the patch tokens are the pretrained HViT's, frame by frame
    ref, _ = simclr.backbone.eval().forward_tokens(clips[:, :, 1])
    torch.testing.assert_close(enc.patch_tokens[:, 1].flatten(1, 2), ref)
    feats = encoder(clips)
    assert feats.tokens.shape == (2, 3 * 16, 16) and feats.grid == (3, 4, 4)
    with pytest.raises(Exception, match='missing|unexpected'):
        MODELS.build(dict(stem, backbone=dict(TINY)))
