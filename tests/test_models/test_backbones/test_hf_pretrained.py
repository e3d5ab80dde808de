"""What both pretrained encoders share: checks before training, freezing,
train mode, checkpointing, mixed precision and the lazy import."""
import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import hvlm
from hvlm.registry import MODELS


def build(kind, path, **kwargs):
    return MODELS.build(dict(type=f'HF{kind}Encoder', pretrained=path,
                             **kwargs))


@pytest.fixture
def clip_copy(hf_dirs, tmp_path):
    """A private copy of the tiny CLIP directory that a test may damage."""
    path = tmp_path / 'clip'
    shutil.copytree(hf_dirs['clip'][0], path)
    return path


# ---------------------------------------------------------------------------
# Failing before training, with the path and the missing item named
# ---------------------------------------------------------------------------
def test_no_network_is_touched(hf_dirs, monkeypatch):
    """Building both towers (and the tokenizer) opens no connection, with
    the hub not switched off by any environment variable."""
    import socket
    for var in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE'):
        monkeypatch.delenv(var, raising=False)
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError('network is off in this test')

    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)
    monkeypatch.setattr(socket, 'getaddrinfo', refuse)
    for family in ('clip', 'siglip'):
        build('Vision', hf_dirs[family][0])
        build('Text', hf_dirs[family][0])
    assert not attempts


def test_missing_directory(tmp_path):
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match='nowhere does not exist'):
        build('Vision', missing)


@pytest.mark.parametrize('kind', ['Vision', 'Text'])
def test_missing_weights_file(clip_copy, kind):
    (clip_copy / 'model.safetensors').unlink()
    with pytest.raises(FileNotFoundError) as e:
        build(kind, str(clip_copy))
    assert str(clip_copy) in str(e.value)
    assert 'model.safetensors' in str(e.value)


def test_missing_config(clip_copy):
    (clip_copy / 'config.json').unlink()
    with pytest.raises(FileNotFoundError,
                       match=f'{clip_copy}/config.json is missing'):
        build('Vision', str(clip_copy))


def test_missing_tokenizer(clip_copy):
    (clip_copy / 'tokenizer.json').unlink()
    with pytest.raises(FileNotFoundError) as e:
        build('Text', str(clip_copy))
    assert f'{clip_copy} has no tokenizer' in str(e.value)
    assert 'tokenizer.json' in str(e.value)
    build('Vision', str(clip_copy))  # the image tower needs none


def test_missing_preprocessor_config(clip_copy):
    (clip_copy / 'preprocessor_config.json').unlink()
    with pytest.raises(FileNotFoundError,
                       match='preprocessor_config.json is missing'):
        build('Vision', str(clip_copy))


def test_missing_statistics_key(clip_copy):
    file = clip_copy / 'preprocessor_config.json'
    cfg = json.loads(file.read_text())
    del cfg['image_std']
    file.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match='preprocessor_config.json: '
                       'image_std=None'):
        build('Vision', str(clip_copy))


@pytest.mark.parametrize('kind, key, arg', [
    ('Vision', 'vision_config.hidden_size', dict(embed_dims=768)),
    ('Text', 'text_config.hidden_size', dict(embed_dims=512)),
    ('Vision', 'vision_config.projection_dim', dict(out_dims=512)),
])
def test_width_the_config_does_not_expect(hf_dirs, kind, key, arg):
    path = hf_dirs['clip'][0]
    with pytest.raises(ValueError) as e:
        build(kind, path, **arg)
    name, value = next(iter(arg.items()))
    assert f'{path}/config.json: {key} is' in str(e.value)
    assert f'{name}={value}' in str(e.value)
    build(kind, path, embed_dims=32)  # the right width passes


def test_weights_that_do_not_fit_config_json(clip_copy):
    """transformers 5 re-initialises such weights with a log line; a
    'pretrained' encoder of random weights must not start training."""
    file = clip_copy / 'config.json'
    cfg = json.loads(file.read_text())
    cfg['vision_config']['intermediate_size'] = 48
    file.write_text(json.dumps(cfg))
    with pytest.raises(ValueError) as e:
        build('Vision', str(clip_copy))
    assert str(clip_copy) in str(e.value)
    assert 'different shape' in str(e.value) and 'fc1.weight' in str(e.value)


@pytest.mark.parametrize('family', ['clip', 'siglip'])
@pytest.mark.parametrize('kind', ['Vision', 'Text'])
def test_config_json_with_fewer_layers_than_the_weights(
        hf_dirs, tmp_path, family, kind):
    path = tmp_path / family
    shutil.copytree(hf_dirs[family][0], path)
    file = path / 'config.json'
    cfg = json.loads(file.read_text())
    cfg[f'{kind.lower()}_config']['num_hidden_layers'] = 1
    file.write_text(json.dumps(cfg))
    with pytest.raises(ValueError) as e:
        build(kind, str(path))
    assert 'in the weights file but not in config.json' in str(e.value)
    assert 'layers.1.' in str(e.value) and str(path) in str(e.value)


def test_weights_missing_from_the_file(clip_copy):
    from safetensors.torch import load_file, save_file
    file = str(clip_copy / 'model.safetensors')
    weights = load_file(file)
    del weights['visual_projection.weight']
    save_file(weights, file, metadata={'format': 'pt'})
    with pytest.raises(ValueError) as e:
        build('Vision', str(clip_copy))
    assert 'missing from the weights file: visual_projection.weight' in str(
        e.value)


def test_a_tower_the_directory_does_not_hold(hf_dirs, tmp_path):
    path, model = hf_dirs['clip']
    model.text_model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="holds only the text tower"):
        build('Vision', str(tmp_path))


def test_unfreeze_pattern_must_match(hf_dirs):
    with pytest.raises(ValueError, match="'layers.9.*' matches no"):
        build('Vision', hf_dirs['clip'][0], unfreeze=['layers.9.*'])


# ---------------------------------------------------------------------------
# Frozen, unfrozen, train mode
# ---------------------------------------------------------------------------
def with_dropout(encoder, p=0.5):
    """Turn on every dropout the tiny checkpoints have at 0."""
    for module in encoder.model.modules():
        if isinstance(getattr(module, 'dropout', None), float):
            module.dropout = p  # attention weights (functional dropout)
        if isinstance(module, nn.Dropout):
            module.p = p
    return encoder


def test_frozen_stays_in_eval_mode(hf_dirs):
    encoder = with_dropout(build('Vision', hf_dirs['clip'][0]))
    frames = torch.randn(2, 3, 1, 32, 32)
    encoder.eval()
    expected = encoder(frames).embeds
    wrapper = nn.Sequential(encoder)
    wrapper.train()  # what the Runner does every epoch
    assert encoder.training
    assert not any(m.training for m in encoder.model.modules())
    out = encoder(frames)
    assert not out.embeds.requires_grad  # no graph kept for a frozen tower
    torch.testing.assert_close(out.embeds, expected, atol=0, rtol=0)


def test_unfrozen_layers_train_and_the_rest_stays(hf_dirs):
    encoder = with_dropout(
        build('Vision', hf_dirs['clip'][0],
              unfreeze=['vision_model.encoder.layers.1.*']))
    trainable = {n for n, p in encoder.model.named_parameters()
                 if p.requires_grad}
    assert trainable and all(
        n.startswith('vision_model.encoder.layers.1.') for n in trainable)
    encoder.train()
    layers = encoder.model.vision_model.encoder.layers
    assert layers[1].training and layers[1].self_attn.training
    assert not layers[0].training and not layers[0].self_attn.training
    assert not encoder.model.vision_model.embeddings.training
    frames = torch.randn(2, 3, 1, 32, 32)
    # dropout of the trained layer is on: two passes differ
    assert not torch.equal(encoder(frames).embeds, encoder(frames).embeds)


def train_steps(encoder, head, steps=3):
    """A few AdamW steps (weight decay on, over every parameter) of a
    linear probe on the encoder's pooled embedding."""
    params = [p for p in [*encoder.parameters(), *head.parameters()]]
    optim = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1)
    encoder.train()
    for step in range(steps):
        torch.manual_seed(step)
        out = encoder(torch.randn(2, 3, 2, 32, 32))
        loss = head(out.embeds).square().mean() + out.patch_tokens.mean()
        optim.zero_grad()
        loss.backward()
        optim.step()


def test_frozen_weights_get_no_gradient_and_never_change(hf_dirs):
    encoder = build('Vision', hf_dirs['siglip'][0])
    head = nn.Linear(encoder.out_dims, 4)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    head_before = head.weight.detach().clone()
    train_steps(encoder, head)
    assert all(p.grad is None for p in encoder.parameters())
    for k, v in encoder.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not torch.equal(head.weight, head_before)


def test_unfrozen_weights_change_and_only_they(hf_dirs):
    pattern = 'vision_model.post_layernorm.*'
    encoder = build('Vision', hf_dirs['clip'][0], unfreeze=[pattern])
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    train_steps(encoder, nn.Linear(encoder.out_dims, 4))
    for k, v in encoder.model.state_dict().items():
        moved = not torch.equal(v, before[k])
        assert moved == k.startswith('vision_model.post_layernorm.'), k


@pytest.mark.parametrize('kind', ['Vision', 'Text'])
def test_gradient_checkpointing_gives_the_same_gradients(hf_dirs, kind):
    path = hf_dirs['clip'][0]
    grads = []
    for with_cp in (False, True):
        encoder = build(kind, path, freeze=False, with_cp=with_cp).train()
        if kind == 'Vision':
            torch.manual_seed(0)
            out = encoder(torch.randn(2, 3, 2, 32, 32))
            loss = out.embeds.sum() + out.patch_tokens.square().mean()
        else:
            out = encoder(['a dog', 'the cat sat on the mat'])
            loss = out.embeds.sum() + out.token_states.square().mean()
        loss.backward()
        grads.append({n: p.grad for n, p in encoder.named_parameters()})
    assert any(getattr(m, 'gradient_checkpointing', False)
               for m in encoder.model.modules())
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        assert grad is not None, name
        torch.testing.assert_close(grads[1][name], grad, atol=1e-6,
                                   rtol=1e-5)


def test_bfloat16_autocast_on_cpu(hf_dirs):
    """What --amp runs on a CPU: bfloat16 autocast around the forward."""
    encoder = build('Vision', hf_dirs['clip'][0])
    frames = torch.randn(2, 3, 2, 32, 32)
    full = encoder(frames).embeds
    with torch.autocast('cpu', dtype=torch.bfloat16):
        half = encoder(frames).embeds
    assert half.dtype == torch.bfloat16
    cos = nn.functional.cosine_similarity(half.float(), full, dim=-1)
    assert cos.min() > 0.99
    with torch.autocast('cpu', dtype=torch.bfloat16):
        text = build('Text', hf_dirs['clip'][0])(['a dog']).embeds
    assert torch.isfinite(text.float()).all()


def test_init_weights_keeps_the_pretrained_weights(hf_dirs):
    """The Runner calls init_weights on the whole model: neither
    transformers' own init_weights nor an enclosing module's init_cfg may
    leave the loaded weights changed."""
    from mmengine.model import BaseModule

    class Holder(BaseModule):

        def __init__(self):
            super().__init__(
                init_cfg=dict(type='Normal', layer='Linear', std=1.))
            self.encoder = build('Vision', hf_dirs['clip'][0])
            self.proj = nn.Linear(24, 4)

    holder = Holder()
    before = {k: v.clone() for k, v in holder.encoder.state_dict().items()}
    holder.init_weights()
    for k, v in holder.encoder.state_dict().items():
        assert torch.equal(v, before[k]), k


# ---------------------------------------------------------------------------
# The lazy import
# ---------------------------------------------------------------------------
def test_transformers_is_imported_inside_functions_only():
    root = Path(hvlm.__file__).parent
    importers = []
    for file in root.rglob('*.py'):
        tree = ast.parse(file.read_text())
        for node in tree.body:  # module level only
            names = [a.name for a in node.names] if isinstance(
                node, ast.Import) else [node.module or ''] if isinstance(
                    node, ast.ImportFrom) else []
            if any(n.split('.')[0] == 'transformers' for n in names):
                importers.append(str(file.relative_to(root)))
    assert not importers, f'module-level transformers imports: {importers}'


def test_importing_hvlm_loads_no_model_code():
    """``import hvlm.models`` registers the encoders without loading any
    transformers model beyond what mmengine loads. (mmengine imports the
    ``transformers`` package when it is installed, to register its Adafactor
    optimizer; transformers then imports ``peft`` when that is installed,
    and peft a model or two.)"""
    code = ('import sys, mmengine.runner\n'
            'before = {m for m in sys.modules}\n'
            'import hvlm, hvlm.models\n'
            'from hvlm.registry import MODELS\n'
            'assert MODELS.get("HFVisionEncoder") is not None\n'
            'assert MODELS.get("HFCausalLM") is not None\n'
            'print(sorted(m for m in sys.modules if m.startswith('
            '"transformers.models.") and m not in before))')
    env = dict(os.environ, PYTHONPATH=str(Path(hvlm.__file__).parents[1]))
    out = subprocess.run([sys.executable, '-c', code], env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]', out.stdout
