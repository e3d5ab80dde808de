"""CLIPRecognizer on a tiny random CLIP: frozen CLIP, gradients only in
the learner, view-averaged probabilities, clamped logit scale, text
features once per step, padded frames never pooled, VideoMix."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hvlm.models.layers import TemporalPooling
from hvlm.registry import MODELS
from hvlm.structures import VideoDataSample

CLASSES = ('roll left', 'roll right', 'jump over a box')


def build(tiny_clip_dir, **kwargs):
    model = MODELS.build(dict(type='CLIPRecognizer', pretrained=tiny_clip_dir,
                              class_texts=CLASSES, **kwargs))
    return model


def batch(B=2, V=2, T=3, labels=(0, 2), seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, 255, (B, V, 3, T, 32, 32), generator=g,
                           dtype=torch.uint8)
    samples = []
    for y in labels[:B]:
        s = VideoDataSample()
        s.gt_label = torch.tensor([y])
        samples.append(s)
    return dict(inputs=list(inputs), data_samples=samples)


@pytest.mark.parametrize('learner', [
    dict(type='VideoCoOp', ctx_len=4),
    dict(type='DualCoOp', ctx_len=2, ctx_len_video=2, deep_visual=True),
    dict(type='ViDOP', ctx_len_video=2),
    dict(type='ViLT', ctx_len=2, prompt_depth=2),
    dict(type='ViTA', ctx_len=2, num_video_tokens=2, num_heads=4),
    dict(type='STT', ctx_len=2, num_video_tokens=2, num_heads=4)
])
def test_only_the_learner_trains_and_clip_is_unchanged(
        tiny_clip_dir, learner):
    torch.manual_seed(0)
    model = build(tiny_clip_dir, prompt_learner=learner,
                  temporal_pooling='attention')
    model.train()
    clip = {n: p.detach().clone() for n, p in model.named_parameters()
            if n.startswith(('image_encoder.', 'text_encoder.'))}
    assert clip and not any(p.requires_grad for n, p in
                            model.named_parameters() if n in clip)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(trainable, lr=1.0)
    data = model.data_preprocessor(batch(), training=True)
    losses = model(**data, mode='loss')
    assert ('loss_text_reg' in losses) == (learner['type'] == 'ViLT')
    sum(losses.values()).backward()
    for n, p in model.named_parameters():
        if n.startswith('prompt_learner.'):
            assert p.grad is not None and p.grad.abs().sum() > 0, n
        if n in clip:
            assert p.grad is None, n
    opt.step()
    for n, p in model.named_parameters():
        if n in clip:
            assert torch.equal(p, clip[n]), n


def test_predict_averages_view_probabilities(tiny_clip_dir):
    torch.manual_seed(0)
    model = build(tiny_clip_dir, prompt_learner=dict(type='VideoCoOp',
                                                     ctx_len=3)).eval()
    data = model.data_preprocessor(batch(V=3), training=False)
    with torch.no_grad():
        logits = model(data['inputs'], mode='tensor')  # [B, V, K]
        out = model(**data, mode='predict')
    assert logits.shape == (2, 3, 3)
    expect = logits.softmax(-1).mean(1)
    assert torch.allclose(torch.stack([s.pred_scores for s in out]), expect)
    assert [int(s.pred_label) for s in out] == expect.argmax(1).tolist()


def test_logit_scale_clamped_at_100(tiny_clip_dir):
    model = build(tiny_clip_dir).eval()
    data = model.data_preprocessor(batch(), training=False)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(1000.))
        big = model(data['inputs'], mode='tensor')
        model.logit_scale.fill_(math.log(100.))
        hundred = model(data['inputs'], mode='tensor')
        model.logit_scale.fill_(math.log(10.))
        ten = model(data['inputs'], mode='tensor')
    assert torch.allclose(big, hundred)
    assert torch.allclose(ten * 10, hundred, atol=1e-4)
    assert hundred.abs().max() <= 100 + 1e-4  # cosine x 100


def test_text_features_once_per_step_and_fixed_ones_cached(tiny_clip_dir,
                                                           monkeypatch):
    import hvlm.models.recognizers.clip_recognizer as mod
    model = build(tiny_clip_dir, prompt_learner=dict(type='VideoCoOp',
                                                     ctx_len=2))
    calls = []
    real = model.prompt_learner.text_features
    monkeypatch.setattr(model.prompt_learner, 'text_features',
                        lambda towers, texts: calls.append(len(texts)) or
                        real(towers, texts))
    data = model.data_preprocessor(batch(B=2, V=3), training=True)
    model(**data, mode='loss')
    assert calls == [3]  # one call for the 3 classes: not per video/view
    zero = build(tiny_clip_dir)
    encoded = []
    real_encode = mod.encode_texts
    monkeypatch.setattr(mod, 'encode_texts', lambda towers, texts: encoded
                        .append(len(texts)) or real_encode(towers, texts))
    with torch.no_grad():
        zero(**data, mode='predict')
        zero(**data, mode='predict')
    assert encoded == [3 * len(zero.templates)]
    zero.set_class_texts(CLASSES[:2])
    with torch.no_grad():
        zero(**data, mode='predict')
    assert encoded[-1] == 2 * len(zero.templates)


def test_zero_shot_class_features_are_the_template_ensemble(tiny_clip_dir):
    from hvlm.models.backbones import HFTextEncoder
    model = build(tiny_clip_dir, templates=('a video of {}.', 'a {}'))
    text = HFTextEncoder(tiny_clip_dir)
    with torch.no_grad():
        ours = model.class_features()
        feats = [F.normalize(text([t.format(c) for c in CLASSES]).embeds,
                             dim=-1) for t in ('a video of {}.', 'a {}')]
    ref = F.normalize((feats[0] + feats[1]) / 2, dim=-1)
    assert torch.allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize('mode', ['mean', 'max', 'attention'])
def test_padded_frames_never_count(mode):
    torch.manual_seed(0)
    pool = TemporalPooling(mode, 8)
    x = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    out = pool(x, mask)
    y = x.clone()
    y[0, 3:] = 1e3  # change only padded frames
    assert torch.allclose(pool(y, mask), out)
    xs = x.numpy()
    if mode == 'mean':
        assert np.allclose(out[0].detach(), xs[0, :3].mean(0), atol=1e-6)
    if mode == 'max':
        assert np.allclose(out[0].detach(), xs[0, :3].max(0))
    if mode == 'attention':  # a video of its valid frames only, unpadded
        assert torch.allclose(pool(x[:1, :3]), out[:1], atol=1e-6)


@pytest.mark.parametrize('mix_type', ['spatial', 'temporal'])
def test_videomix_labels_follow_the_pasted_volume(mix_type):
    torch.manual_seed(3)
    aug = MODELS.build(dict(type='VideoMix', mix_type=mix_type))
    B, V, T, H, W = 4, 2, 6, 16, 20
    # each video constant = its index, so the partner of every voxel shows
    inputs = torch.arange(B, dtype=torch.float).view(B, 1, 1, 1, 1, 1)
    inputs = inputs.expand(B, V, 3, T, H, W).clone()
    samples = batch(B=B, labels=(5, 6, 7, 8))['data_samples']
    for _ in range(5):
        mixed, out = aug(inputs, samples)
        for i, s in enumerate(out):
            partner = s.mix_label - 5
            own = (mixed[i] == i).float().mean().item()
            if partner != i:
                assert own == pytest.approx(s.mix_lambda)
                pasted = (mixed[i] == partner)
                # spatial: the same box in every frame and view
                # temporal: whole frames
                if mix_type == 'spatial':
                    assert (pasted == pasted[:1, :1, :1]).all()
                else:
                    per_frame = pasted.float().mean(dim=(0, 1, 3, 4))
                    assert set(per_frame.tolist()) <= {0.0, 1.0}


def test_videomix_in_preprocessor_and_loss(tiny_clip_dir):
    torch.manual_seed(0)
    model = build(tiny_clip_dir, data_preprocessor=dict(
        type='RecognitionDataPreprocessor',
        batch_augments=dict(type='VideoMix', mix_type='temporal')))
    data = model.data_preprocessor(batch(B=2), training=True)
    s0 = data['data_samples'][0]
    lam, other = s0.mix_lambda, s0.mix_label
    with torch.no_grad():
        logits = model(data['inputs'], mode='tensor').mean(1)
        loss = model(**data, mode='loss')['loss_cls']
    logp = logits.log_softmax(-1)
    labels = [0, 2]
    terms = [-(s.mix_lambda * logp[i, labels[i]] +
               (1 - s.mix_lambda) * logp[i, s.mix_label])
             for i, s in enumerate(data['data_samples'])]
    assert loss.item() == pytest.approx(float(sum(terms) / 2), rel=1e-5)
    assert 0 <= lam <= 1 and other in labels
    # no mixing at test time
    test = model.data_preprocessor(batch(B=2), training=False)
    assert 'mix_label' not in test['data_samples'][0]


def test_bad_config_names_the_key(tiny_clip_dir):
    with pytest.raises(ValueError, match='model.pretrained'):
        MODELS.build(dict(type='CLIPRecognizer'))
    with pytest.raises(ValueError, match='temporal_pooling'):
        build(tiny_clip_dir, temporal_pooling='median')
    with pytest.raises(KeyError, match='VideoCoop'):
        build(tiny_clip_dir, prompt_learner=dict(type='VideoCoop'))


def test_frames_per_pass_keeps_clips_whole(tiny_clip_dir):
    learner = dict(type='ViTA', ctx_len=2, num_video_tokens=2, num_heads=4)
    torch.manual_seed(0)
    whole = build(tiny_clip_dir, prompt_learner=learner).eval()
    torch.manual_seed(0)
    split = build(tiny_clip_dir, prompt_learner=learner,
                  frames_per_pass=5).eval()  # 5 -> 4: two clips of T=2
    data = whole.data_preprocessor(batch(V=2, T=2), training=False)
    with torch.no_grad():
        assert torch.allclose(whole(data['inputs'], mode='tensor'),
                              split(data['inputs'], mode='tensor'),
                              atol=1e-5)
