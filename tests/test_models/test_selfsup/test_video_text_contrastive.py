"""VideoTextContrastive: the loss against its formula, gathered negatives
across two processes, and the Hugging Face export loading back through the
encoders users load downloaded checkpoints with."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hvlm.models.backbones import HFTextEncoder, HFVisionEncoder
from hvlm.models.selfsup import (VideoTextContrastive, byte_tokenizer,
                                 contrastive_loss, save_clip_directory)
from hvlm.models.selfsup.video_text_contrastive import text_ids
from tests.dist_helpers import run_two_ranks
from tests.hf_checkpoints import save_tiny_model

MEAN = [122.77, 116.75, 104.09]
STD = [68.5, 66.63, 70.32]
SCRATCH = dict(
    vision=dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=16,
        patch_size=8),
    text=dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=40),
    projection_dim=24)


def scratch_model(seed=0, **kwargs):
    torch.manual_seed(seed)
    return VideoTextContrastive(
        scratch=SCRATCH,
        data_preprocessor=dict(
            type='VideoDataPreprocessor', mean=MEAN, std=STD),
        **kwargs)


def numpy_clip_loss(v, t, scale):
    """CLIP's symmetric cross-entropy, written out with numpy."""
    logits = scale * v @ t.T
    n = len(v)

    def ce(lg):
        lg = lg - lg.max(1, keepdims=True)
        logp = lg - np.log(np.exp(lg).sum(1, keepdims=True))
        return -logp[np.arange(n), np.arange(n)].mean()

    return (ce(logits) + ce(logits.T)) / 2


def test_loss_is_clips_formula_for_distinct_texts():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(6, 5))
    t = rng.normal(size=(6, 5))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    out = contrastive_loss(
        torch.tensor(v), torch.tensor(t), torch.arange(6),
        torch.tensor(14.3, dtype=torch.float64))
    total = (out['loss_v2t'] + out['loss_t2v']).item()
    assert total == pytest.approx(numpy_clip_loss(v, t, 14.3), rel=1e-10)


def test_equal_texts_share_one_target():
    # videos 0 and 1 are paired with the same text: each of them has both
    # columns 0 and 1 as targets (1/2 each); the rows of text 0 and text 1
    # (the same text) target both videos
    v = F.normalize(torch.randn(3, 4, dtype=torch.float64), dim=1)
    t = F.normalize(torch.randn(3, 4, dtype=torch.float64), dim=1)
    ids = torch.tensor([7, 7, 9])
    out = contrastive_loss(v, t, ids, torch.tensor(10., dtype=torch.float64))
    logits = (10 * v @ t.T).numpy()

    def logp(x):
        return x - np.log(np.exp(x).sum(1, keepdims=True))

    target = np.array([[.5, .5, 0], [.5, .5, 0], [0, 0, 1]])
    v2t = -(target * logp(logits)).sum(1).mean() / 2
    t2v = -(target * logp(logits.T)).sum(1).mean() / 2
    assert out['loss_v2t'].item() == pytest.approx(v2t, rel=1e-10)
    assert out['loss_t2v'].item() == pytest.approx(t2v, rel=1e-10)


def test_text_ids_are_stable_across_processes():
    a = text_ids(['a video of roll right.', 'x', 'a video of roll right.'],
                 'cpu')
    assert a[0] == a[2] and a[0] != a[1]
    # a fixed value: Python's hash() would differ per process
    assert a[1].item() == int.from_bytes(
        __import__('hashlib').blake2b(b'x', digest_size=8).digest(),
        'little') >> 1


def test_byte_tokenizer_ends_with_the_pooled_token_and_covers_any_text():
    tok = byte_tokenizer(40)
    ids = tok('A red circle, 圆!')['input_ids']
    assert ids[0] == 2 and ids[-1] == 3
    assert tok.decode(ids, skip_special_tokens=True) == 'a red circle, 圆!'
    assert len(tok) == 260


def test_export_loads_back_through_the_encoders_exactly(tmp_path):
    model = scratch_model().eval()
    with torch.no_grad():
        model.clip.logit_scale.fill_(np.log(250.))  # above the clamp
    out = model.save_pretrained(str(tmp_path / 'clip'))
    names = sorted(p.name for p in (tmp_path / 'clip').iterdir())
    assert {'config.json', 'model.safetensors', 'preprocessor_config.json',
            'tokenizer.json'} <= set(names)
    # the live model keeps its own value; the export holds the clamped one
    assert model.clip.logit_scale.exp().item() == pytest.approx(250.)
    vision, text = HFVisionEncoder(out), HFTextEncoder(out)
    assert vision.image_size == (16, 16)
    np.testing.assert_allclose(vision.pixel_mean, MEAN, rtol=1e-6)
    np.testing.assert_allclose(vision.pixel_std, STD, rtol=1e-6)
    clips = torch.randn(2, 1, 3, 3, 16, 16)  # [B, clips, C, T, H, W]
    with torch.no_grad():
        ours = model.encode_video(clips)
        theirs = F.normalize(vision(clips[:, 0]).embeds.mean(1), dim=-1)
        assert torch.equal(ours, theirs)
        texts = ['a video of roll right.', 'un círculo rojo', '圆']
        assert torch.equal(
            model.encode_text(texts), F.normalize(text(texts).embeds, dim=-1))
    from transformers import CLIPModel
    clip = CLIPModel.from_pretrained(out, local_files_only=True)
    assert clip.logit_scale.exp().item() == pytest.approx(100., rel=1e-5)
    # and it continues from its own export
    again = VideoTextContrastive(
        pretrained=out,
        data_preprocessor=dict(type='VideoDataPreprocessor')).eval()
    with torch.no_grad():
        assert torch.equal(again.encode_video(clips), ours)
    assert torch.allclose(again.data_preprocessor.mean.flatten(),
                          torch.tensor(MEAN))


def test_continues_a_downloaded_clip_and_refuses_siglip(tmp_path):
    save_tiny_model(str(tmp_path / 'clip'), 'clip')
    model = VideoTextContrastive(pretrained=str(tmp_path / 'clip'))
    assert model.image_size == 32
    assert torch.allclose(model.data_preprocessor.mean.flatten(),
                          torch.tensor([0.48145466, 0.4578275,
                                        0.40821073]) * 255)
    save_tiny_model(str(tmp_path / 'siglip'), 'siglip')
    with pytest.raises(ValueError, match='siglip'):
        VideoTextContrastive(pretrained=str(tmp_path / 'siglip'))
    with pytest.raises(ValueError, match='exactly one of'):
        VideoTextContrastive(pretrained=str(tmp_path / 'clip'),
                             scratch=SCRATCH)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        VideoTextContrastive(pretrained=str(tmp_path / 'nowhere'))
    with pytest.raises(ValueError, match='mean/std'):
        VideoTextContrastive(scratch=SCRATCH)


def test_export_never_deletes_other_files(tmp_path):
    model = scratch_model()
    target = tmp_path / 'out'
    target.mkdir()
    (target / 'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='not empty'):
        model.save_pretrained(str(target))
    with pytest.raises(FileExistsError, match='notes.txt'):
        model.save_pretrained(str(target), overwrite=True)
    assert (target / 'notes.txt').read_text() == 'mine'
    # an earlier export is replaced
    first = model.save_pretrained(str(tmp_path / 'clip'))
    with torch.no_grad():
        model.clip.text_projection.weight.add_(1.)
    model.save_pretrained(first, overwrite=True)
    from safetensors.torch import load_file
    saved = load_file(f'{first}/model.safetensors')
    assert torch.equal(saved['text_projection.weight'],
                       model.clip.text_projection.weight)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]


def _batch(seed, n):
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (n, 1, 3, 2, 16, 16), generator=g,
                           dtype=torch.uint8)
    texts = [f'text {i % 3}' for i in range(n)]  # repeated texts too
    return frames, texts


def _samples(texts):
    from hvlm.structures import VideoDataSample
    out = []
    for t in texts:
        s = VideoDataSample()
        s.set_metainfo(dict(text=t))
        out.append(s)
    return out


def _grads(model, frames, texts):
    data = model.data_preprocessor(
        dict(inputs=list(frames), data_samples=_samples(texts)), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    losses = {k: v for k, v in losses.items() if k.startswith('loss')}
    (losses['loss_v2t'] + losses['loss_t2v']).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()
            if p.grad is not None}, {k: v.detach() for k, v in losses.items()}


def _rank_worker(rank, port, results):
    """Rank ``rank`` trains on its half of the global batch; it compares
    its DDP-averaged gradients with the single-process gradient of the
    whole batch (computed here, so only numbers cross the queue)."""
    import os

    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    frames, texts = _batch(1, 8)
    reference, ref_losses = _grads(scratch_model(seed=0), frames, texts)
    dist.init_process_group('gloo', rank=rank, world_size=2)
    try:
        own = slice(rank * 4, rank * 4 + 4)
        grads, losses = _grads(scratch_model(seed=0), frames[own], texts[own])
        worst = 0.
        for name, g in grads.items():
            dist.all_reduce(g)  # DDP's averaging, by hand
            g /= 2
            ref = reference[name]
            worst = max(worst, ((g - ref).abs() /
                                (ref.abs() + 1e-4)).max().item())
        results.put((rank, sorted(grads) == sorted(reference), worst,
                     float(losses['loss_v2t'] + losses['loss_t2v']),
                     float(ref_losses['loss_v2t'] + ref_losses['loss_t2v'])))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_get_the_gradient_of_the_global_batch():
    out = run_two_ranks(_rank_worker, timeout_s=180)
    for rank, same_params, worst, loss, reference in out:
        assert same_params, rank
        # every rank computes the global loss over the gathered features
        assert loss == pytest.approx(reference, rel=1e-5)
        assert worst < 1e-3, (rank, worst)


def test_predict_scores_every_class_text(tmp_path):
    model = scratch_model().eval()
    frames, texts = _batch(2, 3)
    samples = _samples(texts)
    classes = ['a video of bounce.', 'a video of slide.']
    for s in samples:
        s.set_metainfo(dict(class_texts=classes))
    data = model.data_preprocessor(
        dict(inputs=list(frames), data_samples=samples))
    out = model.predict(data['inputs'], data['data_samples'])
    video = model.encode_video(data['inputs'])
    expected = video @ model.encode_text(classes).t()
    for i, s in enumerate(out):
        assert torch.allclose(s.pred_class_scores, expected[i], atol=1e-6)
        assert torch.allclose(s.pred_text_embed,
                              model.encode_text([texts[i]])[0], atol=1e-6)
    with pytest.raises(ValueError, match='SampleText'):
        model.predict(data['inputs'], _samples([None] * 3))


def test_config_keys_are_checked():
    with pytest.raises(ValueError, match='exactly the keys'):
        VideoTextContrastive(
            scratch=dict(SCRATCH, depth=3),
            data_preprocessor=dict(
                type='VideoDataPreprocessor', mean=MEAN, std=STD))
    with pytest.raises(ValueError, match='max_length'):
        scratch_model(max_length=41)


def test_save_clip_directory_refuses_a_file(tmp_path):
    (tmp_path / 'f').write_text('x')
    with pytest.raises(FileExistsError, match='not a directory'):
        save_clip_directory(str(tmp_path / 'f'), None, None, {})
    assert json.loads('{}') == {}
