"""Prompt learners on a tiny random CLIP: the towers run as transformers
runs them, VideoCoOp from a phrase is CLIP's feature of the sentence, a
class's feature ignores the other classes, visual prompts reach the
layers they name."""
import pytest
import torch

from hvlm.models.backbones import HFTextEncoder, HFVisionEncoder
from hvlm.models.layers import ClipTowers, encode_images, encode_texts
from hvlm.registry import ADAPTERS


@pytest.fixture(scope='module')
def clip(tiny_clip_dir):
    text = HFTextEncoder(tiny_clip_dir)
    image = HFVisionEncoder(tiny_clip_dir)
    towers = ClipTowers(
        text_model=text.model.text_model,
        text_projection=text.model.text_projection,
        vision_model=image.model.vision_model,
        visual_projection=image.model.visual_projection,
        tokenizer=text.tokenizer,
        eos_token_id=text.eos_token_id,
        max_length=text.max_length)
    return text, image, towers


def test_towers_match_transformers(clip):
    text, image, towers = clip
    texts = ['a dog', 'someone rolls to the left', 'the cat sat']
    with torch.no_grad():
        ours = encode_texts(towers, texts)
        ref = text(texts).embeds  # padded batch, HF's causal + pad masks
        frames = torch.randn(3, 3, 32, 32)
        assert torch.allclose(encode_images(towers, frames),
                              image.model(pixel_values=frames).image_embeds,
                              atol=1e-5)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_coop_from_phrase_is_clips_sentence_feature(clip):
    text, _, towers = clip
    coop = ADAPTERS.build(dict(type='VideoCoOp', ctx_len=None,
                               ctx_init='a video of a'))
    coop.setup(towers)
    assert coop.ctx.shape == (len(towers.word_ids('a video of a')), 32)
    classes = ['dog', 'person running', 'cat']
    for c in classes:  # the tokenizer splits at the space: same ids
        assert [*towers.word_ids('a video of a'), *towers.word_ids(
            f'{c}.')] == towers.word_ids(f'a video of a {c}.')
    with torch.no_grad():
        ours = coop.text_features(towers, classes)
        ref = text([f'a video of a {c}.' for c in classes]).embeds
    assert torch.allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize('learner', ['VideoCoOp', 'DualCoOp'])
def test_class_feature_ignores_other_classes(clip, learner):
    _, _, towers = clip
    torch.manual_seed(0)
    coop = ADAPTERS.build(dict(type=learner, ctx_len=4))
    coop.setup(towers)
    with torch.no_grad():
        alone = coop.text_features(towers, ['dog'])[0]
        many = coop.text_features(
            towers, ['the news anchor speaks to a person', 'dog', 'cat'])
        fewer = coop.text_features(towers, ['cat', 'dog'])
    assert torch.allclose(many[1], alone, atol=1e-6)
    assert torch.allclose(fewer[1], alone, atol=1e-6)


@pytest.mark.parametrize('deep', [False, True])
def test_visual_prompts_reach_the_layers_they_name(clip, deep):
    _, _, towers = clip
    dual = ADAPTERS.build(dict(type='DualCoOp', ctx_len=2, ctx_len_video=3,
                               deep_visual=deep))
    dual.setup(towers)
    assert dual.visual_ctx.shape == (2 if deep else 1, 3, 32)
    seen = []
    hooks = [
        layer.register_forward_pre_hook(
            lambda m, args: seen.append(args[0].detach().clone()))
        for layer in towers.vision_model.encoder.layers
    ]
    try:
        with torch.no_grad():
            dual.image_features(towers, torch.randn(2, 3, 32, 32), 2)
    finally:
        for h in hooks:
            h.remove()
    assert [s.shape[1] for s in seen] == [1 + 16 + 3] * 2
    p = dual.visual_ctx
    assert torch.equal(seen[0][:, -3:], p[0].expand(2, -1, -1))
    if deep:  # layer 1 gets its own tokens
        assert torch.equal(seen[1][:, -3:], p[1].expand(2, -1, -1))
    else:  # layer 0's tokens, as layer 0 left them
        assert not torch.allclose(seen[1][:, -3:], p[0].expand(2, -1, -1))


def test_vilt_prompts_reach_both_towers_coupled(clip):
    _, _, towers = clip
    torch.manual_seed(0)
    vilt = ADAPTERS.build(dict(type='ViLT', ctx_len=2, prompt_depth=2))
    vilt.setup(towers)
    assert vilt.switch_layer == 1
    text, vision = vilt.prompts()
    with torch.no_grad():  # the coupling: one tower's prompt projected
        assert torch.allclose(vision[0], vilt.to_vision[0](
            vilt.text_prompts[0]))
        assert torch.allclose(text[1], vilt.to_text[0](
            vilt.vision_prompts[0]))
    seen = {'text': [], 'vision': []}
    hooks = [
        layer.register_forward_pre_hook(
            lambda m, args, k=k: seen[k].append(args[0].detach().clone()))
        for k, tower in (('text', towers.text_model),
                         ('vision', towers.vision_model))
        for layer in tower.encoder.layers
    ]
    try:
        with torch.no_grad():
            vilt.text_features(towers, ['dog', 'cat'])
            vilt.image_features(towers, torch.randn(2, 3, 32, 32), 2)
    finally:
        for h in hooks:
            h.remove()
    positions = towers.text_model.embeddings.position_embedding.weight
    with torch.no_grad():
        # layer 0: context after the start token, plus positions 1..2
        assert torch.allclose(seen['text'][0][:, 1:3],
                              (text[0] + positions[1:3]).expand(2, -1, -1))
        assert torch.allclose(seen['text'][1][:, 1:3],
                              text[1].expand(2, -1, -1))
        for i in range(2):
            assert torch.allclose(seen['vision'][i][:, -2:],
                                  vision[i].expand(2, -1, -1))


def test_vilt_regulariser_is_the_cosine_to_the_template(clip):
    text_enc, _, towers = clip
    vilt = ADAPTERS.build(dict(type='ViLT', ctx_len=2, prompt_depth=2,
                               reg_weight=0.5))
    vilt.setup(towers)
    feats = torch.nn.functional.normalize(torch.randn(2, 24), dim=-1)
    loss = vilt.extra_losses(towers, ['dog', 'cat'], feats)['loss_text_reg']
    with torch.no_grad():
        ref = torch.nn.functional.normalize(text_enc(
            ['a video of a person doing dog.',
             'a video of a person doing cat.']).embeds, dim=-1)
    expect = 0.5 * (1 - (feats * ref).sum(-1)).mean()
    assert loss.item() == pytest.approx(expect.item(), abs=1e-5)


def test_vita_frames_exchange_information_and_tokens_reach_layers(clip):
    _, _, towers = clip
    torch.manual_seed(0)
    vita = ADAPTERS.build(dict(type='ViTA', ctx_len=2, num_video_tokens=3,
                               num_heads=4))
    vita.setup(towers)
    frames = torch.randn(4, 3, 32, 32)  # 2 clips of 2 frames
    changed = frames.clone()
    changed[1] += 1.0  # the second frame of the first clip
    with torch.no_grad():
        a = vita.image_features(towers, frames, 2)
        b = vita.image_features(towers, changed, 2)
        plain = encode_images(towers, frames)
        plain_b = encode_images(towers, changed)
    # the summary carries frame 1 into frame 0; the other clip is untouched
    assert not torch.allclose(a[0], b[0], atol=1e-6)
    assert torch.allclose(a[2:], b[2:], atol=1e-6)
    assert torch.allclose(plain[0], plain_b[0])  # CLIP alone: no exchange
    seen = []
    hooks = [
        layer.register_forward_pre_hook(
            lambda m, args: seen.append(args[0].detach().clone()))
        for layer in towers.vision_model.encoder.layers
    ]
    try:
        with torch.no_grad():
            vita.image_features(towers, frames, 2)
    finally:
        for h in hooks:
            h.remove()
    for i, hidden in enumerate(seen):  # 1 + 16 patches, then the prompts
        assert hidden.shape[1] == 17 + 3 + 2
        assert torch.equal(hidden[:, 17:20],
                           vita.video_tokens[i].expand(4, -1, -1))
        with torch.no_grad():
            assert torch.allclose(hidden[:, 20],
                                  vita.frame_proj[i](hidden[:, 0]))
            s = hidden[:, 21]
        assert torch.equal(s[0], s[1]) and torch.equal(s[2], s[3])


def test_stt_summary_tokens_reach_every_class_prompt(clip):
    _, _, towers = clip
    torch.manual_seed(0)
    stt = ADAPTERS.build(dict(type='STT', ctx_len=2, num_video_tokens=2,
                              num_heads=4))
    stt.setup(towers)
    frames = torch.randn(4, 3, 32, 32)  # 2 clips of 2 frames
    seen = []
    hook = towers.text_model.encoder.layers[0].register_forward_pre_hook(
        lambda m, args: seen.append(args[0].detach().clone()))
    try:
        with torch.no_grad():
            stt.start_batch()
            stt.image_features(towers, frames, 2)
            two = stt.clip_text_features(towers, ['dog', 'cat'])
            one = stt.clip_text_features(towers, ['cat'])
    finally:
        hook.remove()
    assert two.shape == (2, 2, 24)
    # per clip, a class's feature still ignores the other classes
    assert torch.allclose(two[:, 1], one[:, 0], atol=1e-6)
    # and it depends on the clip: its summaries are in the prompt
    assert not torch.allclose(two[0], two[1], atol=1e-4)
    summaries = torch.stack(stt._summaries[0], dim=1)  # [2 clips, 2, C]
    with torch.no_grad():
        suffix = stt.summary_to_text(summaries)
    positions = towers.text_model.embeddings.position_embedding.weight
    n_dog = len(towers.word_ids('dog.'))
    start = 1 + 2 + n_dog  # [start] ctx(2) dog. -> the summary tokens
    hidden = seen[0].view(2, 2, *seen[0].shape[1:])  # [clip, class, L, C]
    with torch.no_grad():
        assert torch.allclose(hidden[:, 0, start:start + 2],
                              suffix + positions[start:start + 2],
                              atol=1e-6)
