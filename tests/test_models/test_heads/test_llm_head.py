"""LLMHead: the sequence it builds, its loss, generation and truncation,
inside a MultiTaskHead."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hvlm.models  # noqa: F401
from hvlm.models.heads import keep_evenly
from hvlm.models.heads.video_memory import step_labels, time_features
from hvlm.registry import HEADS
from hvlm.structures import VideoDataSample, VideoFeatures
from tests.hf_causal_lms import save_tiny_lm

C = 16


@pytest.fixture(scope='module')
def lm_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('tiny_llama'))
    save_tiny_lm(path, 'llama')
    return path


def feats(num_videos=2, N=6, seed=0):
    """Unmerged tokens on a (T0=2, 1, N/2) grid, one clip of 4 frames."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(num_videos, N, C, generator=g)
    index = torch.arange(N).expand(num_videos, -1)
    return VideoFeatures(tokens, torch.ones(num_videos, N), index,
                         (2, 1, N // 2), 2, 4, 1)


def sample(qa=(), captions=(), domain=None):
    s = VideoDataSample(metainfo=dict(video_id='v', domain=domain,
                                      frame_times=[0., 1., 2., 3.]))
    s.gt_qa = [dict(question=q, answer=a, answer_id=-1) for q, a in qa]
    if captions:
        s.gt_captions = [dict(text=t, start=b, end=e)
                         for t, b, e in captions]
    return s


def build(path, **kwargs):
    cfg = dict(type='LLMHead', in_channels=C,
               llm=dict(type='HFCausalLM', pretrained=path))
    cfg.update(kwargs)
    return HEADS.build(cfg)


QA = [('what does the person do?', 'rolls to the left'),
      ('what happens first?', 'a ball bounces')]


def test_loss_covers_exactly_the_answer_tokens(lm_dir):
    head = build(lm_dir, tasks=('video_qa', ))
    samples = [sample(QA), sample(QA[:1])]
    f = feats()
    items = head._items(samples, training=True)
    embeds, mask, labels, _, _ = head._sequences(f, samples, items, 0)
    lm = head.llm
    video = head(f)  # [V, M, C_lm]
    nll, count = 0., 0
    for r, item in enumerate(items):
        prompt = lm.encode(item.prompt)
        answer = lm.encode(' ' + item.target) + [lm.eos_token_id]
        # labels: -100 everywhere but where the answer is predicted
        L, n = labels.shape[1], video.shape[1] + len(prompt) + len(answer)
        expected = torch.full((L, ), -100)
        expected[L - len(answer) - 1:L - 1] = torch.tensor(answer)
        assert torch.equal(labels[r], expected)
        assert mask[r].tolist() == [0] * (L - n) + [1] * n
        # the same item alone, without padding, built here by hand
        seq = torch.cat([video[item.video],
                         lm.embed(torch.tensor(prompt + answer))])[None]
        logits, _ = lm(seq, torch.ones(1, n, dtype=torch.long))
        targets = torch.tensor(answer)
        nll = nll + F.cross_entropy(logits[0, -len(answer) - 1:-1], targets,
                                    reduction='sum')
        count += len(answer)
    losses = head.loss(f, samples)
    torch.testing.assert_close(losses['loss_answer'], nll / count,
                               atol=1e-4, rtol=0)
    # only the projector and the time embedding learn; the LM is frozen
    losses['loss_answer'].backward()
    learned = {n for n, p in head.named_parameters() if p.grad is not None}
    assert learned == {n for n, p in head.named_parameters()
                       if not n.startswith('llm.')}


def test_predict_writes_text_that_batching_does_not_change(lm_dir):
    head = build(lm_dir, generation=dict(max_new_tokens=5)).eval()
    caps = [('a person jumps', 0., 1.5), ('over a box', 1.5, 4.)]
    f = feats()
    both = head.predict(f, [sample(QA, caps), sample(QA[:1])])
    assert [p['question'] for p in both[0].pred_qa] == [q for q, _ in QA]
    assert all(isinstance(p['answer'], str) for p in both[0].pred_qa)
    assert [(c['start'], c['end']) for c in both[0].pred_captions] == \
        [(0., 1.5), (1.5, 4.)]
    # the second video alone (its tokens only) gives the same text
    one = feats()
    one.tokens = one.tokens[1:]
    one.size, one.index = one.size[1:], one.index[1:]
    alone = head.predict(one, [sample(QA[:1])])[0]
    assert alone.pred_qa == both[1].pred_qa
    # captions read only the tokens of their segment: the first segment
    # covers time step 0 (frames 0-1, up to 2 s), the second step 1
    s = sample(captions=caps)
    steps = head._video(f)[1]
    assert head._segment_tokens(f, steps, s, 0, 0., 1.5).tolist() == \
        [0, 1, 2]
    assert head._segment_tokens(f, steps, s, 0, 2.5, 4.).tolist() == \
        [3, 4, 5]


def test_predicted_captions_do_not_read_the_reference(lm_dir):
    """``predict`` captions the ground-truth segments without their text:
    another reference text gives the same caption, and so do the same
    times given as detected segments (``pred_segments``) or asked for
    alone (``tasks``). (The reference text was once put in the prompt.)"""
    head = build(lm_dir, generation=dict(max_new_tokens=6)).eval()
    f = feats(1)
    times = [(0., 1.5), (1.5, 4.)]

    def captions(texts=None, **fields):
        s = sample(QA[:1], [(t, b, e) for t, (b, e) in zip(texts, times)]
                   if texts else ())
        for key, value in fields.items():
            setattr(s, key, value)
        return [(c['start'], c['end'], c['text']) for c in head.predict(
            f, [s], tasks=('video_captioning', ))[0].pred_captions]

    ref = captions(['a person jumps', 'over a box'])
    assert ref == captions(['two people play tennis', 'the news anchor'])
    # detected segments, the worse scored first: captioned best first
    detected = captions(pred_segments=torch.tensor(times[::-1]),
                        pred_segment_scores=torch.tensor([0.2, 0.9]))
    assert detected == ref
    head.max_pred_segments = 1
    assert captions(pred_segments=torch.tensor(times[::-1]),
                    pred_segment_scores=torch.tensor([0.2, 0.9])) == ref[:1]
    # no segment at all: the whole sampled span (frames 0-3 s)
    assert [c[:2] for c in captions()] == [(0., 3.)]
    s = head.predict(f, [sample(QA[:1])], tasks=('video_qa', ))[0]
    assert 'pred_captions' not in s and len(s.pred_qa) == 1
    with pytest.raises(ValueError, match='segments='):
        build(lm_dir, segments='detected')


def test_sampled_answers_repeat_under_the_seed(lm_dir):
    gen = dict(strategy='sample', max_new_tokens=6, temperature=2., seed=3)
    head = build(lm_dir, tasks=('video_qa', ), generation=gen).eval()
    f = feats()

    def answers():
        out = head.predict(f, [sample(QA), sample(QA)])
        return [p['answer'] for s in out for p in s.pred_qa]

    assert answers() == answers()


def test_too_long_for_the_context(lm_dir):
    assert keep_evenly(10, 4).tolist() == [0, 3, 6, 9]
    assert keep_evenly(3, 5).tolist() == [0, 1, 2]
    f = feats(N=80)  # 80 video tokens, context 64
    s = [sample(QA[:1]), sample(QA[:1])]
    head = build(lm_dir, tasks=('video_qa', ))
    items = head._items(s, training=True)
    embeds, mask, labels, _, _ = head._sequences(f, s, items, 0)
    assert embeds.shape[1] == 64 and bool(mask.all())
    text = len(head.llm.encode(items[0].prompt)) + len(
        head.llm.encode(' ' + items[0].target)) + 1
    kept = keep_evenly(80, 64 - text)
    torch.testing.assert_close(embeds[0, :64 - text], head(f)[0, kept])
    strict = build(lm_dir, tasks=('video_qa', ), overflow='error')
    with pytest.raises(ValueError, match='80 video tokens.*context of'):
        strict.loss(f, s)
    capped = build(lm_dir, tasks=('video_qa', ), max_video_tokens=8)
    assert capped._sequences(f, s, items, 0)[0].shape[1] == 8 + text


def test_inside_multi_task_head_with_lora_stages(lm_dir):
    llm = dict(type='HFCausalLM', pretrained=lm_dir,
               lora=dict(domains=('sports', 'news'),
                         target_modules=('q_proj', 'v_proj'), rank=2))
    head = HEADS.build(dict(
        type='MultiTaskHead',
        heads=dict(
            action_detection=dict(type='ActionDetectionHead',
                                  in_channels=C, num_classes=3),
            language=dict(type='LLMHead', in_channels=C, llm=llm,
                          freeze_llm_epochs=1,
                          generation=dict(max_new_tokens=3)))))
    llm_head = head.heads['language']
    lora = list(llm_head.llm.adapter.lora_parameters())
    assert all(p.requires_grad for p in lora)  # for the optimizer
    llm_head.set_llm_trainable(False)  # stage 1 (LLMStageHook's call)
    assert not any(p.requires_grad for p in lora)
    s = [sample(QA, [('a person jumps', 0., 2.)], domain='news'),
         sample(QA[:1], domain='sports')]
    for x in s:
        x.gt_frame_labels = torch.zeros(4, dtype=torch.long)
    losses = head.loss(feats(), s)
    assert {'loss_language_answer', 'loss_language_caption'} <= set(losses)
    llm_head.set_llm_trainable(True)  # stage 2: LoRA of both domains
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    losses = head.loss(feats(), s)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(p.grad is not None for p in lora)
    out = head.predict(feats(), s)
    assert 'pred_segments' in out[0] and len(out[0].pred_qa) == 2


@pytest.mark.parametrize('lora', [False, True])
def test_whole_lm_stages_follow_the_full_config(lm_dir, lora):
    """``configs/llm/llm_sports_stage2_full.py`` (``llm.freeze=False``, no
    LoRA; also with LoRA beside it): every LM weight is in the optimizer at
    ``llm_lr``; ``LLMStageHook`` freezes all of them (and the LoRA factors)
    for ``freeze_llm_epochs`` while the projector learns, then trains them;
    a frozen LM (``freeze=True``) keeps its base frozen in both stages."""
    from types import SimpleNamespace

    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper

    from hvlm.engine.hooks import LLMStageHook
    cfg = Config.fromfile('configs/llm/llm_sports_stage2_full.py')
    cfg.optim_wrapper.paramwise_cfg.custom_keys['.llm.model.'] = dict(
        lr_mult=0.1)  # a rate of its own, so that a wrong one would show
    heads = cfg.model.head.heads
    heads.language.update(in_channels=C, generation=dict(max_new_tokens=2))
    heads.language.llm.pretrained = lm_dir
    heads.action_detection.update(in_channels=C, num_classes=3)
    if lora:
        heads.language.llm.lora = dict(
            domains=('sports', ), target_modules=('q_proj', 'v_proj'),
            rank=2)
    head = HEADS.build(cfg.model.head)
    language = head.heads['language']
    assert cfg.custom_hooks == [dict(type='LLMStageHook')]
    assert language.freeze_llm_epochs == cfg.freeze_llm_epochs == 1
    optim = build_optim_wrapper(head, cfg.optim_wrapper)
    held = {id(p): g['lr'] for g in optim.optimizer.param_groups
            for p in g['params']}
    base = [p for n, p in language.llm.named_parameters()
            if 'lora_' not in n]
    factors = [p for n, p in language.llm.named_parameters()
               if 'lora_' in n]
    assert bool(factors) == lora
    assert all(held[id(p)] == pytest.approx(0.1 * cfg.lr) for p in base)
    assert held[id(language.projector[0].weight)] == pytest.approx(cfg.lr)

    hook = LLMStageHook()
    s = [sample(QA, domain='sports'), sample(QA[:1], domain='sports')]
    for x in s:
        x.gt_frame_labels = torch.zeros(4, dtype=torch.long)
    for epoch, trains in ((0, False), (1, True)):
        head.train()
        hook.before_train_epoch(SimpleNamespace(model=head, epoch=epoch))
        head.zero_grad()
        losses = head.loss(feats(), s)
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        for p in base + factors:
            assert p.requires_grad is trains
            assert (p.grad is not None) is trains
        assert language.llm.model.training is trains
        assert language.projector[0].weight.grad is not None
        # the config's step_loss: its layers learn in both stages
        assert {'loss_language_step_start', 'loss_language_step_cls'} <= \
            set(losses)
        assert language.step_cls.weight.grad.abs().sum() > 0
    # a frozen LM: its LoRA trains in stage 2, its base never
    frozen = build(lm_dir, llm=dict(
        type='HFCausalLM', pretrained=lm_dir, lora=dict(
            domains=('sports', ), target_modules=('q_proj', ), rank=2)))
    frozen.set_llm_trainable(True)
    assert all(p.requires_grad is ('lora_' in n)
               for n, p in frozen.llm.named_parameters())
    assert frozen.llm.trained_part == "the LM's LoRA"
    assert language.llm.trained_part == 'the whole LM' + (
        ' and its LoRA' if lora else '')


def test_vocab_projector_mixes_word_embeddings(lm_dir):
    """``projector='vocab'``: each video token is a softmax mixture of the
    LM's input embeddings, scored against the MLP's output (computed here
    in numpy); the frozen embeddings get no gradient."""
    head = build(lm_dir, projector='vocab', tasks=('video_qa', ))
    f = feats()
    video = head(f)  # [V, M, C_lm]
    words = head.llm.model.get_input_embeddings().weight.detach().double()
    memory = f.tokens.reshape(2, 6, C)
    times = head._video(f)[1]
    memory = memory + head.time_embed(time_features(times, 2, 4))
    h = head.projector(memory).detach().double().numpy()
    E = words.numpy()
    logits = h @ E.T / (np.sqrt((E**2).mean()) * np.sqrt(E.shape[1]))
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    np.testing.assert_allclose(video.detach().double().numpy(),
                               weights @ E, atol=1e-6, rtol=0)
    # a convex mixture of words: inside their per-channel range
    assert (video <= words.max(0).values.float() + 1e-6).all()
    assert (video >= words.min(0).values.float() - 1e-6).all()
    head.loss(f, [sample(QA), sample(QA[:1])])['loss_answer'].backward()
    assert head.projector[0].weight.grad.abs().sum() > 0
    assert head.llm.model.get_input_embeddings().weight.grad is None
    with pytest.raises(ValueError, match="projector='conv'"):
        build(lm_dir, projector='conv')


def clip_feats(num_videos=2, num_clips=2, N=6, seed=0):
    """``num_clips`` clips of 4 frames per video, unmerged tokens on a
    (T0=2, 1, N/2) grid each."""
    g = torch.Generator().manual_seed(seed)
    B = num_videos * num_clips
    tokens = torch.randn(B, N, C, generator=g)
    index = torch.arange(N).expand(B, -1)
    return VideoFeatures(tokens, torch.ones(B, N), index, (2, 1, N // 2), 2,
                         4, num_clips)


def test_resampler_projector_reads_each_clip_alone(lm_dir):
    """``projector='resampler'``: K learned queries per clip read that
    clip's tokens (with their time embedding) through a Q-Former layer and
    the MLP; another clip's or video's tokens change nothing; the
    ``log(size)`` bias decides what the queries read; the tokens span their
    clip's time, so a caption reads only its clips."""
    K = 3
    head = build(lm_dir, projector='resampler',
                 resampler=dict(num_queries=K, num_heads=2))
    f = clip_feats()
    video = head(f)  # [V, nc*K, C_lm]
    assert video.shape == (2, 2 * K, head.llm.embed_dims)
    # the same layers applied by hand to video 1, clip 0
    memory = f.tokens.reshape(2, 12, C)[1, :6]
    steps = torch.tensor([[0, 0], [0, 0], [0, 0], [1, 1], [1, 1], [1, 1]])
    memory = memory + head.time_embed(time_features(steps, 4, 4))
    x = head.resampler[0](head.queries[None], memory=memory[None],
                          memory_bias=torch.zeros(1, 6))
    expected = head.projector(head.resampler_norm(x))[0]
    torch.testing.assert_close(video[1, :K], expected)
    # another clip's tokens change nothing in this clip's queries
    g = clip_feats()
    g.tokens[3] += 5.  # video 1, clip 1
    other = head(g)
    torch.testing.assert_close(other[:, :K], video[:, :K])
    torch.testing.assert_close(other[0], video[0])
    assert not torch.allclose(other[1, K:], video[1, K:])
    # a token merged from e^40 tubelets takes all of the cross-attention:
    # the clip's other tokens no longer matter
    heavy = clip_feats()
    heavy.size[0, 2] = float(np.exp(40.))
    changed = clip_feats()
    changed.size[0, 2] = float(np.exp(40.))
    changed.tokens[0, [0, 1, 3, 4, 5]] = torch.randn(5, C)
    torch.testing.assert_close(head(heavy)[0, :K], head(changed)[0, :K])
    assert not torch.allclose(head(heavy)[0, :K], video[0, :K])
    # time: clip 0 covers steps 0-1 (frames 0-3 s), clip 1 steps 2-3
    _, spans = head._video(f)
    assert spans[0].tolist() == [[0, 1]] * K + [[2, 3]] * K
    s = VideoDataSample(metainfo=dict(frame_times=[0., 1., 2., 3.] * 1 +
                                      [4., 5., 6., 7.]))
    assert head._segment_tokens(f, spans, s, 0, 4.5, 6.).tolist() == \
        list(range(K, 2 * K))
    # trained by the text losses
    head.loss(f, [sample(QA), sample(QA[:1])])['loss_answer'].backward()
    assert head.queries.grad.abs().sum() > 0
    assert head.resampler[0].kv_cross.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="projector='resampler'"):
        build(lm_dir, resampler=dict(num_queries=2))
    with pytest.raises(ValueError, match='unknown keys'):
        build(lm_dir, projector='resampler', resampler=dict(queries=2))
    with pytest.raises(ValueError, match='num_queries=0'):
        build(lm_dir, projector='resampler', resampler=dict(num_queries=0))


def test_unfrozen_tied_lm_trains_its_shared_embedding_once(tmp_path):
    """``llm.freeze=False`` on an LM with tied input and output embeddings
    (tiny GPT-2): the optimizer built with configs/llm/'s paramwise_cfg
    holds every trainable weight exactly once (mmengine fails on the
    shared one otherwise)."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper

    from tests.test_tools.conftest import REPO
    save_tiny_lm(str(tmp_path), 'gpt2')
    head = build(str(tmp_path), llm=dict(type='HFCausalLM',
                                         pretrained=str(tmp_path),
                                         freeze=False))
    lm = head.llm.model
    assert lm.get_input_embeddings().weight is \
        lm.get_output_embeddings().weight
    cfg = Config.fromfile(str(REPO / 'configs/llm/llm_demo_stage2_lora.py'))
    wrapper = build_optim_wrapper(head, cfg.optim_wrapper)
    held = [id(p) for g in wrapper.optimizer.param_groups
            for p in g['params']]
    assert len(held) == len(set(held))
    assert set(held) == {id(p) for p in head.parameters() if p.requires_grad}


def test_video_norm_standardises_each_channel_over_the_tokens(lm_dir):
    """``video_norm='batch'``: in training the projector reads the tokens
    with each channel at mean 0 and variance 1 over all the batch's tokens
    (a large shared mean token removed, small differences between videos
    scaled up); in evaluation, with the running statistics, so a video's
    prefix does not depend on the others in its batch."""
    head = build(lm_dir, video_norm='batch', time_freqs=0,
                 tasks=('video_qa', ))
    seen = []
    head.projector.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach()))
    f = feats()
    shared = torch.linspace(-3, 3, C) * 10  # one large mean token
    f.tokens = f.tokens * 0.3 + shared
    head.train()
    head(f)
    x = seen[-1].flatten(0, 1).double()  # [V*M, C]
    torch.testing.assert_close(x.mean(0), torch.zeros(C, dtype=x.dtype),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(x.var(0, unbiased=False),
                               torch.ones(C, dtype=x.dtype), atol=1e-3,
                               rtol=0)
    head.eval()
    norm = head.video_norm
    one = feats(num_videos=1, seed=3)
    one.tokens = one.tokens * 0.3 + shared
    head(one)
    expected = (one.tokens - norm.running_mean) / (norm.running_var +
                                                   norm.eps).sqrt()
    torch.testing.assert_close(seen[-1], expected)
    with pytest.raises(ValueError, match="video_norm='layer'"):
        build(lm_dir, video_norm='layer')


def test_video_norm_center_removes_the_mean_and_keeps_channel_scales(
        lm_dir):
    """``video_norm='center'``: each channel's mean over the tokens removed
    and one scale for all channels (the RMS of what is left), so a channel
    that barely varies stays small; running averages in evaluation."""
    head = build(lm_dir, video_norm='center', time_freqs=0,
                 tasks=('video_qa', ))
    seen = []
    head.projector.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach().double()))
    f = feats()
    spread = torch.linspace(0.01, 2., C)  # per-channel spread of the tokens
    f.tokens = f.tokens * spread + torch.linspace(-3, 3, C) * 10
    head.train()
    head(f)
    x = f.tokens.flatten(0, 1).double()
    centred = x - x.mean(0)
    expected = centred / centred.pow(2).mean().sqrt()
    torch.testing.assert_close(seen[-1].flatten(0, 1), expected, atol=1e-4,
                               rtol=1e-4)
    norm = head.video_norm
    torch.testing.assert_close(norm.running_mean.double(),
                               0.1 * x.mean(0), atol=1e-4, rtol=1e-5)
    head.eval()
    head(f)
    torch.testing.assert_close(
        seen[-1], (f.tokens.double() - norm.running_mean.double()) /
        (norm.running_scale.double() + norm.eps), atol=1e-5, rtol=1e-5)


def test_encoder_grad_scale_scales_only_what_reaches_the_encoder(lm_dir):
    """``encoder_grad_scale``: the encoder's tokens get that share of the
    language losses' gradient; the head's own parameters get all of it;
    the forward pass is unchanged."""
    grads = []
    for scale in (1.0, 0.1):
        torch.manual_seed(0)
        head = build(lm_dir, encoder_grad_scale=scale, tasks=('video_qa', ))
        f = feats()
        f.tokens.requires_grad_(True)
        loss = head.loss(f, [sample(QA), sample(QA[:1])])['loss_answer']
        loss.backward()
        grads.append((loss.detach(), f.tokens.grad,
                      head.projector[0].weight.grad))
    (loss1, tokens1, proj1), (loss01, tokens01, proj01) = grads
    assert torch.equal(loss1, loss01)
    assert tokens1.abs().sum() > 0
    torch.testing.assert_close(tokens01, 0.1 * tokens1)
    torch.testing.assert_close(proj01, proj1)
    with pytest.raises(ValueError, match='encoder_grad_scale=-1'):
        build(lm_dir, encoder_grad_scale=-1)


def test_step_tokens_are_size_weighted_means_of_each_step(lm_dir):
    """``step_tokens=True``: after the video tokens come one token per time
    step of the sampled video, the mean of the tokens covering that step,
    each weighted by its size (computed here with loops); a merged token
    spanning two steps counts in both; step tokens span their step, so a
    caption's segment reads the step tokens it overlaps."""
    head = build(lm_dir, step_tokens=True, time_freqs=0, projector='linear')
    seen = []
    head.projector.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach()))
    # 2 clips of a (T0=2, 1, 3) grid per video, merged to 4 tokens per
    # clip: token 0 holds tubelets 0 (step 0) and 3 (step 1)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randn(4, 4, C, generator=g)
    index = torch.tensor([0, 1, 2, 0, 3, 3]).expand(4, -1)
    size = torch.tensor([2., 1., 1., 2.]).expand(4, -1)
    f = VideoFeatures(tokens, size, index, (2, 1, 3), 2, 4, 2)
    video, spans = head._video(f)
    x = seen[-1]
    assert x.shape == (2, 8 + 4, C) and video.shape[1] == 12
    torch.testing.assert_close(x[:, :8], tokens.reshape(2, 8, C))
    covers = {0: [0, 1, 2], 1: [0, 3]}  # step within clip -> tokens
    for v in range(2):
        for clip in range(2):
            for t, members in covers.items():
                w = size[0, members]
                toks = tokens[2 * v + clip, members]
                expected = (w[:, None] * toks).sum(0) / w.sum()
                torch.testing.assert_close(x[v, 8 + 2 * clip + t], expected)
    assert spans[0, 8:].tolist() == [[0, 0], [1, 1], [2, 2], [3, 3]]
    assert spans[0, 4].tolist() == [2, 3]  # clip 1's token 0: both steps
    s = VideoDataSample(metainfo=dict(frame_times=[0., 1., 2., 3.] +
                                      [4., 5., 6., 7.]))
    # 6.5-7 s is step 3 (clip 1's frames 2-3): its tokens and step token
    assert head._segment_tokens(f, spans, s, 0, 6.5, 7.).tolist() == \
        [4, 7, 11]
    # the time embedding marks the step tokens' steps too
    timed = build(lm_dir, step_tokens=True, tasks=('video_qa', ))
    seen_t = []
    timed.projector.register_forward_pre_hook(
        lambda module, args: seen_t.append(args[0].detach()))
    timed(f)
    steps = torch.tensor([[0, 0], [1, 1], [2, 2], [3, 3]])
    torch.testing.assert_close(
        seen_t[-1][:, 8:] - x[:, 8:],
        timed.time_embed(time_features(steps, 4, 4)).detach().expand(
            2, 4, C))
    head.loss(f, [sample(QA), sample(QA[:1])])['loss_answer'].backward()
    assert head.projector.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='step_tokens'):
        build(lm_dir, step_tokens=True, projector='resampler')


def test_max_step_tokens_are_each_steps_maximum_over_its_tubelets(lm_dir):
    """``step_tokens='max'``: one token per time step, the channel-wise
    maximum over the step's tubelets, each tubelet taking the token it was
    merged into (computed here with loops); the video tokens before them
    are unchanged, and the steps they span are their own."""
    head = build(lm_dir, step_tokens='max', time_freqs=0, projector='linear')
    seen = []
    head.projector.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach()))
    g = torch.Generator().manual_seed(1)
    tokens = torch.randn(4, 4, C, generator=g)
    # per clip: tubelets 0-2 are step 0, 3-5 step 1; a different merge in
    # each clip, so that a wrong clip or video would show
    index = torch.tensor([[0, 1, 2, 0, 3, 3], [1, 1, 0, 2, 3, 2],
                          [0, 0, 0, 1, 2, 3], [3, 2, 1, 0, 0, 0]])
    f = VideoFeatures(tokens, torch.ones(4, 4), index, (2, 1, 3), 2, 4, 2)
    video, spans = head._video(f)
    x = seen[-1]
    assert x.shape == (2, 8 + 4, C) and video.shape[1] == 12
    torch.testing.assert_close(x[:, :8], tokens.reshape(2, 8, C))
    for v in range(2):
        for clip in range(2):
            b = 2 * v + clip
            for t in range(2):
                members = index[b, 3 * t:3 * t + 3]
                expected = torch.stack([tokens[b, m] for m in members])
                torch.testing.assert_close(x[v, 8 + 2 * clip + t],
                                           expected.max(0).values)
    assert spans[1, 8:].tolist() == [[0, 0], [1, 1], [2, 2], [3, 3]]
    head.loss(f, [sample(QA), sample(QA[:1])])['loss_answer'].backward()
    assert head.projector.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="step_tokens='min'"):
        build(lm_dir, step_tokens='min')


def test_step_labels_follow_the_frames_of_each_step():
    """Each step's frames (the last step of a 3-frame clip reaches past
    it: -1) and whether a labelled frame in it differs from the sampled
    frame before it, checked by loops over random labels."""
    g = torch.Generator().manual_seed(0)
    f = VideoFeatures(torch.zeros(6, 4, C), torch.ones(6, 4),
                      torch.zeros(6, 6, dtype=torch.long), (2, 1, 3), 2, 3,
                      3)
    frames = torch.randint(-1, 3, (2, 9), generator=g)
    labels, starts = step_labels(f, frames)
    assert labels.shape == (2, 6, 2) and starts.shape == (2, 6)
    for v in range(2):
        for clip in range(3):
            for t in range(2):
                step = 2 * clip + t
                expected, start = [], False
                for k in range(2):
                    frame = 2 * t + k
                    if frame >= 3:
                        expected.append(-1)
                        continue
                    i = 3 * clip + frame
                    label = int(frames[v, i])
                    expected.append(label)
                    before = int(frames[v, i - 1]) if i else -1
                    start |= label >= 0 and label != before
                assert labels[v, step].tolist() == expected
                assert bool(starts[v, step]) == start
    with pytest.raises(ValueError, match='frame labels of 8 frames'):
        step_labels(f, frames[:, :8])


def test_step_loss_reads_the_lm_states_at_the_step_tokens(lm_dir):
    """``step_loss``: the states of layer ``layer`` at each video's step
    tokens (from its first question's sequence, run here alone) give the
    start and class losses; a video without frame labels adds nothing;
    the layer after ``layer`` gets no gradient from them."""
    head = build(lm_dir, tasks=('video_qa', ), step_tokens='max',
                 llm=dict(type='HFCausalLM', pretrained=lm_dir,
                          freeze=False),
                 step_loss=dict(num_classes=4, layer=1, loss_weight=0.5))
    g = torch.Generator().manual_seed(2)
    # 3 videos of 2 clips of 3 frames; steps: frames 0-1 and 2 of a clip
    f = VideoFeatures(torch.randn(6, 4, C, generator=g), torch.ones(6, 4),
                      torch.tensor([[0, 1, 2, 0, 3, 3]] * 6), (2, 1, 3),
                      2, 3, 2)
    samples = [sample(QA), sample(QA[:1]), sample(QA[1:])]
    samples[0].gt_frame_labels = torch.tensor([3, 3, 1, 1, 2, 2])
    samples[1].gt_frame_labels = torch.tensor([-1, -1, 0, 0, 0, -1])
    starts = torch.tensor([[1., 1., 1., 0.], [0., 1., 0., 0.]])
    frame_labels = torch.tensor([[[3, 3], [1, -1], [1, 2], [2, -1]],
                                 [[-1, -1], [0, -1], [0, 0], [-1, -1]]])
    losses = head.loss(f, samples)
    video = head(f)  # [V, 8 + 4, C_lm]
    lm = head.llm
    bce, ce, count = 0., 0., 0
    for v in range(2):
        ids = lm.encode(samples[v].gt_qa[0]['question'].join(
            ['question: ', ' answer:']))
        seq = torch.cat([video[v], lm.embed(torch.tensor(ids))])[None]
        states = lm(seq, torch.ones(1, seq.shape[1], dtype=torch.long),
                    output_hidden_states=True)[2][1][0, 8:12]
        bce = bce + F.binary_cross_entropy_with_logits(
            head.step_start(states)[:, 0], starts[v], reduction='sum')
        logits = head.step_cls(states)
        for step in range(4):
            for label in frame_labels[v, step].tolist():
                if label >= 0:
                    ce = ce + F.cross_entropy(logits[step],
                                              torch.tensor(label))
                    count += 1
    torch.testing.assert_close(losses['loss_step_start'], 0.5 * bce / 8,
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(losses['loss_step_cls'], 0.5 * ce / count,
                               atol=1e-4, rtol=0)
    head.zero_grad()
    (losses['loss_step_start'] + losses['loss_step_cls']).backward()
    grads = {n: p.grad for n, p in head.named_parameters()}
    assert grads['projector.0.weight'].abs().sum() > 0
    assert grads['step_start.weight'].abs().sum() > 0
    assert any(g is not None and g.abs().sum() > 0
               for n, g in grads.items() if '.layers.0.' in n)
    assert all(g is None or g.abs().sum() == 0
               for n, g in grads.items() if '.layers.1.' in n)
    # no frame labels in the batch: zero losses that still have a graph
    empty = head.loss(f, [sample(QA), sample(QA[:1]), sample(QA[1:])])
    assert empty['loss_step_start'].item() == 0
    assert empty['loss_step_cls'].requires_grad


def test_step_loss_checks_its_config_and_labels(lm_dir):
    with pytest.raises(ValueError, match='set step_tokens'):
        build(lm_dir, step_loss=dict())
    with pytest.raises(ValueError, match=r"unknown keys \['weight'\]"):
        build(lm_dir, step_tokens='max', step_loss=dict(weight=1.))
    with pytest.raises(ValueError, match=r'step_loss.layer=3 .*2 layers'):
        build(lm_dir, step_tokens='max', step_loss=dict(layer=3))
    head = build(lm_dir, tasks=('video_qa', ), step_tokens='max',
                 step_loss=dict(num_classes=2))
    s = sample(QA)
    s.gt_frame_labels = torch.tensor([0, 1, 2, 1])
    with pytest.raises(ValueError, match='step_loss.num_classes=2'):
        head.loss(feats(1), [s])
    s.gt_frame_labels = torch.tensor([0, 1, 1])
    with pytest.raises(ValueError, match='3 gt_frame_labels'):
        head.loss(feats(1), [s])
    # starts only (num_classes=0): no class layer and no class loss
    head = build(lm_dir, tasks=('video_qa', ), step_tokens='max',
                 step_loss=dict())
    s.gt_frame_labels = torch.tensor([0, 1, 1, 1])
    assert head.step_cls is None
    assert set(head.loss(feats(1), [s])) == {'loss_answer',
                                             'loss_step_start'}


def test_step_tokens_are_kept_whole_when_cutting_to_fit(lm_dir):
    """Too long for the context with ``step_tokens``: the step tokens stay,
    the other video tokens are cut evenly to what is left."""
    f = feats(N=80)  # 80 video tokens + 2 step tokens, context 64
    s = [sample(QA[:1]), sample(QA[:1])]
    head = build(lm_dir, tasks=('video_qa', ), step_tokens=True)
    items = head._items(s, training=True)
    embeds, mask, _, _, _ = head._sequences(f, s, items, 0)
    assert embeds.shape[1] == 64 and bool(mask.all())
    text = len(head.llm.encode(items[0].prompt)) + len(
        head.llm.encode(' ' + items[0].target)) + 1
    kept = torch.cat([keep_evenly(80, 64 - text - 2), torch.tensor([80,
                                                                    81])])
    torch.testing.assert_close(embeds[0, :64 - text], head(f)[0, kept])
    strict = build(lm_dir, tasks=('video_qa', ), overflow='error',
                   step_tokens=True)
    with pytest.raises(ValueError,
                       match='80 video tokens [+] 2 step tokens [+] '):
        strict.loss(f, s)


def assert_batch_answers_as_one_alone(head):
    """The second of two videos answered in a batch = answered alone (its
    tokens only)."""
    head.eval()
    head.generation['max_new_tokens'] = 4
    both = head.predict(feats(), [sample(QA), sample(QA[:1])])
    one = feats()
    one.tokens = one.tokens[1:]
    one.size, one.index = one.size[1:], one.index[1:]
    assert head.predict(one, [sample(QA[:1])])[0].pred_qa == both[1].pred_qa


def test_video_placed_where_the_prompt_says(lm_dir):
    """``<video>`` in a template: ``[pad] [text before] [video] [text
    after] [answer] [end]``; the loss still covers exactly the answer
    tokens (checked against the sequence built by hand); generation
    reads the same sequence (a batch gives the text of one at a time)."""
    template = 'question: {question}<video> answer:'
    head = build(lm_dir, tasks=('video_qa', ),
                 prompts=dict(video_qa=template))
    samples = [sample(QA), sample(QA[:1])]
    f = feats()
    items = head._items(samples, training=True)
    embeds, mask, labels, _, _ = head._sequences(f, samples, items, 0)
    lm = head.llm
    video = head(f)
    nll, count = 0., 0
    for r, item in enumerate(items):
        before = lm.encode(f'question: {item.key}')
        after = lm.encode(' answer:')
        answer = lm.encode(' ' + item.target) + [lm.eos_token_id]
        seq = torch.cat([lm.embed(torch.tensor(before)), video[item.video],
                         lm.embed(torch.tensor(after + answer))])
        L, n = labels.shape[1], seq.shape[0]
        torch.testing.assert_close(embeds[r, L - n:], seq)
        assert mask[r].tolist() == [0] * (L - n) + [1] * n
        expected = torch.full((L, ), -100)
        expected[L - len(answer) - 1:L - 1] = torch.tensor(answer)
        assert torch.equal(labels[r], expected)
        logits, _ = lm(seq[None], torch.ones(1, n, dtype=torch.long))
        nll = nll + F.cross_entropy(logits[0, -len(answer) - 1:-1],
                                    torch.tensor(answer), reduction='sum')
        count += len(answer)
    torch.testing.assert_close(head.loss(f, samples)['loss_answer'],
                               nll / count, atol=1e-4, rtol=0)
    assert_batch_answers_as_one_alone(head)
    with pytest.raises(ValueError, match='more than once'):
        build(lm_dir, prompts=dict(video_qa='<video> {question} <video>'))


@pytest.mark.parametrize('mode', ['bidirectional', 'self'])
def test_video_attention_flags_the_video_tokens(lm_dir, mode):
    """``video_attention``: the flags mark exactly the video tokens (here
    inside the prompt); the loss is the LM's with that mask on each row
    alone; a batch predicts what one video alone does; and the mode
    changes what the LM reads."""
    template = 'question: {question}<video> answer:'
    head = build(lm_dir, tasks=('video_qa', ), video_attention=mode,
                 prompts=dict(video_qa=template))
    samples = [sample(QA), sample(QA[:1])]
    f = feats()
    items = head._items(samples, training=True)
    embeds, mask, labels, is_video, _ = head._sequences(
        f, samples, items, 0)
    lm, M = head.llm, f.tokens.shape[1]
    nll, count = 0., 0
    for r, item in enumerate(items):
        before = len(lm.encode(f'question: {item.key}'))
        n = int(mask[r].sum())
        L = mask.shape[1]
        flags = torch.zeros(n, dtype=torch.bool)
        flags[before:before + M] = True
        assert torch.equal(is_video[r], torch.cat([
            torch.zeros(L - n, dtype=torch.bool), flags]))
        logits, _ = lm(embeds[r:r + 1, L - n:],
                       torch.ones(1, n, dtype=torch.long),
                       prefix=flags[None], prefix_attention=mode)
        picked = labels[r, L - n:] != -100
        nll = nll + F.cross_entropy(logits[0][picked],
                                    labels[r, L - n:][picked],
                                    reduction='sum')
        count += int(picked.sum())
    loss = head.loss(f, samples)['loss_answer']
    torch.testing.assert_close(loss, nll / count, atol=1e-4, rtol=0)
    causal = build(lm_dir, tasks=('video_qa', ),
                   prompts=dict(video_qa=template))
    causal.load_state_dict(head.state_dict())
    other = causal.loss(f, samples)['loss_answer'].item()
    assert abs(other - loss.item()) > 1e-4
    assert_batch_answers_as_one_alone(head)
    with pytest.raises(ValueError, match="video_attention='full'"):
        build(lm_dir, video_attention='full')
