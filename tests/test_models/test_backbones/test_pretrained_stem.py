"""HierarchicalVideoEncoder / HierarchicalVLM on a pretrained image
encoder's patch tokens (FrameTokenStem)."""
import pytest
import torch

from hvlm.registry import MODELS
from hvlm.structures import VideoDataSample
from tests.hf_checkpoints import MEAN, STD


def build(path, **kwargs):
    cfg = dict(
        type='HierarchicalVideoEncoder',
        patch_size=2,
        embed_dims=(16, 24),
        depths=(1, 1),
        num_heads=(2, 2),
        drop_path_rate=0.,
        stem=dict(type='HFVisionEncoder', pretrained=path))
    cfg.update(kwargs)
    return MODELS.build(cfg)


ATTENTIONS = [
    dict(type='FullAttention'),
    dict(type='StridedAttention', stride=2, window_size=16),
    dict(type='LocalGlobalAttention', window_size=8, num_global=2,
         sliding=True),
    dict(type='HierarchicalAttentionBlock', window_size=None, pool='avg'),
    dict(type='LinearAttentionBlock', kernel_type='elu', local_window=8),
    dict(type='PerformerAttention', nb_features=8),
    dict(type='CrossMemoryAttention', memory_size=8, segment_len=None,
         carry_memory=False),
    dict(type='MambaLayer', d_state=4, d_conv=2, expand=1),
]
ADAPTIVE = dict(
    type='AdaptiveTokenMerger',
    motion=dict(enabled=True, window_size=3),
    saliency=dict(enabled=True, edge=True, attention=True, color=True),
    adaptive_merging=dict(target_compression_ratio=0.5))
MERGERS = [
    dict(type='SpatialPoolMerger', kernel=(1, 2, 2)),
    dict(ADAPTIVE),  # reads the frames and the block's keys
    None,
]


def check_training_step(encoder, clips):
    feats = encoder(clips)
    loss = feats.tokens.square().mean() + feats.pooled().sum()
    loss.backward()
    stem = encoder.patch_embed
    for name, p in stem.encoder.named_parameters():
        assert p.grad is None, f'frozen stem weight {name} got a gradient'
    for part in (stem.proj, stem.norm):
        for p in part.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0
    last = encoder.stages[-1][-1]
    assert all(p.grad is not None for p in last.parameters())
    return feats


@pytest.mark.parametrize('attention', ATTENTIONS,
                         ids=[a['type'] for a in ATTENTIONS])
def test_every_attention_runs_on_pretrained_tokens(hf_dirs, attention):
    torch.manual_seed(0)
    encoder = build(hf_dirs['clip'][0], attention=attention)
    feats = check_training_step(encoder, torch.randn(2, 3, 4, 32, 32))
    assert feats.grid == (2, 4, 4)  # (T/t, 32/8, 32/8)
    assert feats.temporal_patch == 2 and feats.num_frames == 4
    assert feats.tokens.shape == (2, 2 * 2 * 2, 24)  # after the 2x2 merge


@pytest.mark.parametrize('merger', MERGERS,
                         ids=['spatial_pool', 'adaptive', 'none'])
@pytest.mark.parametrize('family', ['clip', 'siglip'])
def test_every_merger_runs_on_pretrained_tokens(hf_dirs, family, merger):
    torch.manual_seed(0)
    encoder = build(hf_dirs[family][0], merger=merger)
    feats = check_training_step(encoder, torch.randn(2, 3, 5, 32, 32))
    assert feats.grid == (3, 4, 4)  # 5 frames -> groups of 2, 2, 1
    assert feats.size.sum(1).tolist() == [48., 48.]  # every token counted
    assert feats.frame_features().shape == (2, 3, 24)


def test_groups_average_their_frames_then_project(hf_dirs):
    """Tokens are norm+projection of the mean of t frames' patch tokens;
    a shorter last group averages only the frames it has."""
    encoder = build(hf_dirs['clip'][0], patch_size=3)
    stem = encoder.patch_embed
    clips = torch.randn(1, 3, 4, 32, 32)
    tokens, grid = stem(clips)
    assert grid == (2, 4, 4)
    frames = stem.encoder(clips).patch_tokens  # [1, 4, 4, 4, 32]
    groups = torch.stack([frames[:, :3].mean(1), frames[:, 3]], 1)
    expected = stem.proj(stem.norm(groups)).flatten(1, 3)
    torch.testing.assert_close(tokens, expected, atol=1e-6, rtol=0)


def test_patch_size_and_channels_are_checked(hf_dirs):
    path = hf_dirs['clip'][0]
    assert build(path, patch_size=(2, 8, 8)).patch_embed.patch_size == (2, 8,
                                                                        8)
    with pytest.raises(ValueError, match=r'patch_size=\(2, 16, 16\)'):
        build(path, patch_size=(2, 16, 16))
    with pytest.raises(ValueError, match='in_channels=1'):
        build(path, in_channels=1)


def test_frozen_stem_is_unchanged_by_training(hf_dirs):
    encoder = build(hf_dirs['siglip'][0])
    before = {k: v.clone()
              for k, v in encoder.patch_embed.encoder.state_dict().items()}
    proj_before = encoder.patch_embed.proj.weight.detach().clone()
    optim = torch.optim.AdamW(encoder.parameters(), lr=1e-2,
                              weight_decay=0.1)
    encoder.train()
    for step in range(2):
        torch.manual_seed(step)
        encoder(torch.randn(2, 3, 2, 32, 32)).tokens.square().mean().backward()
        optim.step()
        optim.zero_grad()
    for k, v in encoder.patch_embed.encoder.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not torch.equal(encoder.patch_embed.proj.weight, proj_before)
    assert not any(m.training
                   for m in encoder.patch_embed.encoder.model.modules())


# ---------------------------------------------------------------------------
# The whole model: normalisation from the checkpoint
# ---------------------------------------------------------------------------
def vlm_cfg(path, **preprocessor):
    return dict(
        type='HierarchicalVLM',
        data_preprocessor=dict(type='VideoDataPreprocessor', **preprocessor),
        backbone=dict(
            type='HierarchicalVideoEncoder',
            patch_size=2,
            embed_dims=(16, 24),
            depths=(1, 1),
            num_heads=(2, 2),
            stem=dict(type='HFVisionEncoder', pretrained=path)),
        head=dict(
            type='MultiTaskHead',
            heads=dict(
                action_detection=dict(
                    type='ActionDetectionHead', in_channels=24,
                    num_classes=3))))


def test_preprocessor_takes_the_checkpoints_statistics(hf_dirs):
    model = MODELS.build(vlm_cfg(hf_dirs['clip'][0]))
    pre = model.data_preprocessor
    assert pre.normalise
    torch.testing.assert_close(pre.mean.flatten(),
                               torch.tensor(MEAN) * 255)
    torch.testing.assert_close(pre.std.flatten(), torch.tensor(STD) * 255)
    clips = torch.full((3, 2, 32, 32), 255, dtype=torch.uint8)
    out = pre(dict(inputs=[clips[None]], data_samples=[VideoDataSample()]))
    expected = (1 - torch.tensor(MEAN)) / torch.tensor(STD)
    torch.testing.assert_close(out['inputs'][0, 0, :, 0, 0, 0], expected)


def test_preprocessor_with_other_statistics_is_refused(hf_dirs):
    path = hf_dirs['clip'][0]
    imagenet = dict(mean=[123.675, 116.28, 103.53],
                    std=[58.395, 57.12, 57.375])
    with pytest.raises(ValueError) as e:
        MODELS.build(vlm_cfg(path, **imagenet))
    assert f'{path}/preprocessor_config.json' in str(e.value)
    same = dict(mean=[m * 255 for m in MEAN], std=[s * 255 for s in STD])
    MODELS.build(vlm_cfg(path, **same))  # repeating them is fine


def test_vlm_loss_reaches_projection_not_stem(hf_dirs):
    model = MODELS.build(vlm_cfg(hf_dirs['siglip'][0]))
    model.init_weights()  # what the Runner does; keeps pretrained weights
    model.train()
    samples = []
    for _ in range(2):
        s = VideoDataSample()
        s.set_metainfo(dict(num_frames=4))
        s.gt_frame_labels = torch.tensor([0, 1, 2, 1])
        samples.append(s)
    batch = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (1, 3, 4, 32, 32),
                                   dtype=torch.uint8) for _ in range(2)],
             data_samples=samples), True)
    losses = model(**batch, mode='loss')
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    stem = model.backbone.patch_embed
    assert stem.proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in stem.encoder.parameters())


def count_calls(module):
    calls = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


def uint8_batch(model, domains, training=False):
    samples = [VideoDataSample(metainfo=dict(domain=d, num_frames=2))
               for d in domains]
    for s in samples:
        s.gt_frame_labels = torch.tensor([0, 1])
    return model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (1, 3, 2, 32, 32),
                                   dtype=torch.uint8) for _ in domains],
             data_samples=samples), training)


def test_domain_router_reads_the_stem_the_backbone_reuses(hf_dirs):
    cfg = vlm_cfg(hf_dirs['clip'][0])
    cfg['router'] = dict(type='DomainRouter', domains=('sports', 'news'))
    model = MODELS.build(cfg).eval()
    assert model.router.classifier[1].in_features == 16  # first stage
    calls = count_calls(model.backbone.patch_embed.encoder)
    batch = uint8_batch(model, ('sports', 'news'))
    out = model(**batch, mode='predict')
    assert [s.pred_domain in ('sports', 'news') for s in out] == [True, True]
    assert len(calls) == 1  # one ViT pass serves router and backbone
    expected = model.backbone(batch['inputs'].flatten(0, 1)).tokens
    feats = model.extract_feat(batch['inputs'], batch['data_samples'])
    torch.testing.assert_close(feats.tokens, expected, atol=1e-6, rtol=0)


def test_lora_reaches_into_the_pretrained_tower(hf_dirs):
    """LoRAAdapter's name patterns match the tower's linears too
    ('self_attn', 'mlp'): its factors train, its weights stay, and
    init_weights leaves both alone."""
    cfg = vlm_cfg(hf_dirs['clip'][0])
    cfg['adapter'] = dict(type='LoRAAdapter', domains=('sports', ),
                          target_modules=('attn', 'mlp'), freeze_base=True)
    model = MODELS.build(cfg)
    tower = 'patch_embed.encoder.model.vision_model.encoder.layers.'
    assert any(n.startswith(tower) for n in model.adapter.layers)
    stem = model.backbone.patch_embed
    before = {k: v.clone() for k, v in stem.encoder.state_dict().items()
              if 'lora_' not in k}
    model.init_weights()
    model.train()
    sample = VideoDataSample(metainfo=dict(domain='sports', num_frames=2))
    sample.gt_frame_labels = torch.tensor([0, 1])
    batch = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (1, 3, 2, 32, 32),
                                   dtype=torch.uint8)],
             data_samples=[sample]), True)
    # LoRA B starts at zero: give it a value so that A gets a gradient too
    for layer in model.adapter.layers.values():
        torch.nn.init.normal_(layer.lora_B['sports'], std=0.1)
    sum(v for k, v in model(**batch, mode='loss').items()
        if 'loss' in k).backward()
    q = stem.encoder.model.vision_model.encoder.layers[0].self_attn.q_proj
    assert q.lora_A['sports'].grad.abs().sum() > 0
    assert q.weight.grad is None
    for k, v in stem.encoder.state_dict().items():
        if k in before:
            assert torch.equal(v, before[k]), k


def test_routing_with_lora_in_the_tower_ignores_the_last_batch(hf_dirs):
    """With LoRA inside the ViT the router reads the stem on base weights
    (not the domain the previous batch selected) and the backbone runs the
    stem again under the chosen domain."""
    cfg = vlm_cfg(hf_dirs['clip'][0])
    cfg['adapter'] = dict(type='LoRAAdapter', domains=('sports', 'news'),
                          target_modules=('attn', 'mlp'))
    cfg['router'] = dict(type='DomainRouter', domains=('sports', 'news'),
                         mode='hard')
    model = MODELS.build(cfg).eval()
    for layer in model.adapter.layers.values():
        for d in ('sports', 'news'):
            torch.nn.init.normal_(layer.lora_B[d], std=0.5)
    batch = uint8_batch(model, ('sports', ))
    clips = batch['inputs'].flatten(0, 1)
    decisions = []
    for previous in ('sports', 'news'):
        model.adapter.select(previous)
        decisions.append(model.route(clips, 1, None, 'predict')[1].logits)
    torch.testing.assert_close(decisions[0], decisions[1], atol=0, rtol=0)
    calls = count_calls(model.backbone.patch_embed.encoder)
    model(**batch, mode='predict')
    assert len(calls) == 2
