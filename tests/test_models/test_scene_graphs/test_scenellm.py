"""SceneLLM: the token layout, the LM's states at the pair positions against
the Hugging Face model run by hand, the LM's stages (frozen, then LoRA with
its own rate) through the optimizer the config builds, and that no
prediction reads ground-truth predicates."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from hvlm.engine.hooks import LLMStageHook
from hvlm.models.language.demo_lm import scene_graph_texts
from hvlm.models.scene_graphs.scenellm import frame_sequences
from hvlm.registry import MODELS
from hvlm.utils import register_all_modules
from tests.hf_causal_lms import save_tiny_lm
from tests.test_models.test_scene_graphs.test_sttran import _video
from tests.test_tools.conftest import REPO

register_all_modules(init_default_scope=False)
DEMO = REPO / 'configs' / 'scene_graph' / 'scenellm_predcls_demo.py'


@pytest.fixture(scope='module')
def lm_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp('scenellm_lms')
    out = {}
    for family in ('llama', 'gpt2'):
        save_tiny_lm(str(root / family), family)
        out[family] = str(root / family)
    return out


def _scenellm(path, mode='predcls', lora=True, **kw):
    torch.manual_seed(0)
    llm = dict(type='HFCausalLM', pretrained=path)
    if lora:
        llm['lora'] = dict(type='LoRAAdapter', domains=('scene_graph', ),
                           target_modules=('q_proj', 'v_proj', 'c_attn'),
                           rank=4, alpha=8., dropout=0.)
    return MODELS.build(dict(
        type='SceneLLM', mode=mode, llm=llm, hidden_dim=32, num_heads=4,
        spatial_layer=1, temporal_layer=1, embed_dim=8, roi_size=3,
        mask_size=12, dropout=0.0, codebook_size=16, num_codebooks=2,
        backbone=dict(type='SmallConvNet', channels=(8, 16)), **kw))


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    videos = [_video(rng, 3), _video(rng, 4, 1)]
    return [v[0] for v in videos], [v[1] for v in videos]


def test_frame_sequences_by_hand():
    # video 0: frames 0, 1 (2 and 0 pairs); video 1: frames 2, 3, 4 (1, 3,
    # 1 pairs); F = 5 frames, so pair p is token 5 + p
    pair_frame = torch.tensor([0, 0, 2, 3, 3, 3, 4])
    index, mask = frame_sequences(pair_frame, [0, 2], [2, 3], 6)
    want = [[0, 5, 6, 1], [2, 7, 3, 8, 9, 10], [4, 11]]
    assert index.shape == (3, 6)
    for row, m, w in zip(index.tolist(), mask.tolist(), want):
        assert row[:len(w)] == w and m == [1] * len(w) + [0] * (6 - len(w))
    # a long context keeps each video in one sequence
    index, mask = frame_sequences(pair_frame, [0, 2], [2, 3], 64)
    assert index[1, :mask[1].sum()].tolist() == [2, 7, 3, 8, 9, 10, 4, 11]
    with pytest.raises(ValueError, match='max_sequence_tokens=3'):
        frame_sequences(pair_frame, [0, 2], [2, 3], 3)


@pytest.mark.parametrize('family', ['llama', 'gpt2'])
def test_lm_states_at_pair_positions_and_lm_matters(lm_dirs, family):
    model = _scenellm(lm_dirs[family]).eval()
    inputs, samples = _batch()
    seen = {}
    model.quantizer.register_forward_hook(
        lambda m, i, o: seen.__setitem__('tokens', o[0]))
    model.llm_out.register_forward_hook(
        lambda m, i, o: seen.__setitem__('states', i[0]))
    out = model(inputs, samples, mode='predict')

    # by hand: the second video alone (frames 3..6 of the batch, one pair
    # each, pairs 6..9), through the plain Hugging Face model
    from transformers import AutoModelForCausalLM
    hf = AutoModelForCausalLM.from_pretrained(
        lm_dirs[family], local_files_only=True).eval()
    tok = seen['tokens'][6:10]  # [4, D]
    with torch.no_grad():
        frame = model.projector(model.frame_fc(tok)) + \
            model.type_embed.weight[0]
        scene = model.projector(tok) + model.type_embed.weight[1]
        seq = torch.stack([frame, scene], 1).reshape(8, -1)  # f, p, f, p..
        want = hf.base_model(inputs_embeds=seq[None]).last_hidden_state[0]
    torch.testing.assert_close(seen['states'][6:10], want[1::2],
                               rtol=1e-4, atol=1e-5)

    # other LM weights, other relation scores
    with torch.no_grad():
        for name, p in model.llm.model.named_parameters():
            if 'lora_' not in name and p.dim() == 2:
                p.mul_(1.5)
    moved = model(inputs, samples, mode='predict')
    for k in ('pred_attention', 'pred_spatial', 'pred_contacting'):
        assert not torch.allclose(moved[0][k], out[0][k]), k


def test_frozen_lm_then_lora_with_its_own_rate(lm_dirs):
    model = _scenellm(lm_dirs['llama'], freeze_llm_epochs=1)
    cfg = Config.fromfile(str(DEMO))
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    lora = {id(p): n for n, p in model.named_parameters() if '.lora_' in n}
    base = {id(p): n for n, p in model.llm.named_parameters()
            if 'lora_' not in n}
    assert lora and base
    held = {id(p): g['lr'] for g in optim.optimizer.param_groups
            for p in g['params']}
    # the frozen LM is not in the optimizer; LoRA is, at llm_lr
    assert not set(base) & set(held)
    assert all(held[i] == pytest.approx(cfg.llm_lr) for i in lora)
    assert held[id(model.projector[0].weight)] == pytest.approx(cfg.lr)

    hook = LLMStageHook()
    runner = SimpleNamespace(model=model, epoch=0)
    inputs, samples = _batch()
    params = dict(model.named_parameters())

    def step():
        before = {n: p.detach().clone() for n, p in params.items()}
        optim.zero_grad()
        losses = model(inputs, samples, mode='loss')
        sum(losses.values()).backward()
        grads = {n for n, p in params.items() if p.grad is not None}
        optim.step()
        changed = {n for n, p in params.items()
                   if not torch.equal(p.detach(), before[n])}
        return grads, changed

    model.train()
    hook.before_train_epoch(runner)  # epoch 1 of freeze_llm_epochs=1
    grads, changed = step()
    assert not {lora[i] for i in lora} & (grads | changed)
    assert not {base[i] for i in base} & (grads | changed)
    assert 'projector.0.weight' in changed and 'llm_out.weight' in changed
    runner.epoch = 1
    hook.before_train_epoch(runner)
    grads, changed = step()
    lora_b = {lora[i] for i in lora if '.lora_B.' in lora[i]}
    assert lora_b <= grads and lora_b <= changed
    assert not {base[i] for i in base} & (grads | changed)


@pytest.mark.parametrize('mode', ['predcls', 'sgcls'])
def test_trains_and_never_reads_ground_truth_at_test(lm_dirs, mode):
    inputs, samples = _batch(4)
    model = _scenellm(lm_dirs['llama'], mode=mode, feature_residual=True)
    losses = model(inputs, samples, mode='loss')
    want = {'loss_attention', 'loss_spatial', 'loss_contacting',
            'loss_codebook', 'loss_commitment'}
    assert set(losses) == want | ({'loss_object'} if mode == 'sgcls'
                                  else set())
    sum(losses.values()).backward()
    no_grad = [n for n, p in model.named_parameters()
               if p.requires_grad and p.grad is None]
    assert not no_grad, no_grad
    model.eval()
    out = model(inputs, samples, mode='predict')
    for o, s in zip(out, samples):
        M = len(s['obj_boxes'])
        assert o['pred_pairs'].shape == (M, 2)
        assert o['pred_codes'].shape == (M, 2)
        torch.testing.assert_close(o['pred_attention'].sum(1),
                                   torch.ones(M))
        assert o['pred_spatial'].shape == (M, 6)
        assert o['pred_contacting'].shape == (M, 17)
    g_rng = np.random.default_rng(5)
    garbled = []
    for s in samples:
        M = len(s['obj_boxes'])
        g = dict(s, attention=torch.from_numpy(g_rng.integers(0, 3, M)),
                 spatial=1 - s['spatial'], contacting=1 - s['contacting'])
        if mode == 'sgcls':
            g['obj_labels'] = torch.from_numpy(g_rng.integers(2, 37, M))
        garbled.append(g)
    again = model(inputs, garbled, mode='predict')
    for o, a in zip(out, again):
        for k in ('pred_attention', 'pred_spatial', 'pred_contacting',
                  'pred_labels', 'pred_scores', 'pred_codes'):
            assert torch.equal(o[k], a[k]), k


def test_sgdet_falls_out_of_the_shared_code(lm_dirs):
    from tests.test_models.test_scene_graphs.test_sgdet import _sample
    frames, s = _sample()
    model = _scenellm(lm_dirs['llama'], mode='sgdet')
    losses = model([frames], [s], mode='loss')
    assert 'loss_object' in losses and 'loss_commitment' in losses
    model.eval()
    # frame 1 has no person detection: a frame token without pairs
    out = model([frames], [s], mode='predict')[0]
    assert out['pred_pairs'].tolist() == [[0, 1], [0, 2]]
    moved = dict(s, person_boxes=s['person_boxes'] + 5,
                 obj_labels=s['obj_labels'] + 1, attention=s['attention'] * 0,
                 contacting=1 - s['contacting'])
    again = model([frames], [moved], mode='predict')[0]
    for k in ('pred_labels', 'pred_scores', 'pred_attention',
              'pred_contacting'):
        assert torch.equal(again[k], out[k]), k


def test_bad_settings_are_named(lm_dirs):
    with pytest.raises(ValueError, match="llm_domain='sports'"):
        _scenellm(lm_dirs['llama'], llm_domain='sports')
    with pytest.raises(ValueError, match='max_sequence_tokens=100'):
        _scenellm(lm_dirs['llama'], max_sequence_tokens=100)


def test_scene_graph_texts_read_the_triplets():

    class Data:
        metainfo = dict(
            classes=('__background__', 'person', 'cup', 'bag'),
            predicates=tuple(f'p{i}' for i in range(26)))
        info = dict(obj_frames=[0, 0, 1], obj_labels=[2, 3, 2],
                    attention=[0, 2, 1],
                    spatial=np.eye(6, dtype=np.uint8)[[2, 0, 5]],
                    contacting=np.zeros((3, 17), np.uint8))
        info['contacting'][0, [5, 16]] = 1

        def full_init(self):
            pass

        def __len__(self):
            return 1

        def get_data_info(self, i):
            return self.info

    assert scene_graph_texts(Data()) == [
        'person p0 cup . cup p5 person . person p14 cup . person p25 cup ; '
        'person p2 bag . bag p3 person',
        'person p1 cup . cup p8 person']
