"""A checkpoint that does not fit the model stops tools/test.py, load_from
and --resume with the file and the first differing keys named; a LoRA
fine-tune lets the LoRA factors alone be missing."""
import re
import shutil

import pytest
import torch

from hvlm.apis import init_model
from tests.test_apis.conftest import tiny_checkpoint_path
from .conftest import REPO, TINY, data_options, find_one, run_tool

TINY_LORA = str(REPO / 'tests/data/configs/tiny_sports_lora-ft.py')
# tiny_sports.py with a wider first stage: every tensor of that stage and
# the patch embedding change shape, the heads do not.
WIDER = 'model.backbone.embed_dims=(24,32)'
SHAPE_LINE = re.compile(
    r'  \S+: checkpoint \[[\d, ]+\], model \[[\d, ]+\]')


@pytest.fixture(scope='module')
def general_checkpoint(tmp_path_factory, tiny_demo_root):
    """A real 1-epoch checkpoint of tests/data/configs/tiny_sports.py."""
    return tiny_checkpoint_path(tmp_path_factory, tiny_demo_root)


@pytest.fixture(scope='module')
def wider_checkpoint(tmp_path_factory, general_checkpoint):
    """The general checkpoint as if trained with a wider first stage: its
    meta and trained tokenizers, the weights of a wider model."""
    ckpt = torch.load(general_checkpoint, weights_only=False)
    wider = init_model(
        TINY, cfg_options={'model.backbone.embed_dims': (24, 32)})
    state = wider.state_dict()
    for key, value in ckpt['state_dict'].items():
        if key.endswith('_extra_state'):
            state[key] = value
    path = tmp_path_factory.mktemp('wider') / 'wider.pth'
    torch.save(dict(meta=ckpt['meta'], state_dict=state), path)
    return path


def refused(proc, path):
    """The tool failed, naming ``path``, a few keys and a count; and
    neither mmengine's per-key lines nor metrics were printed."""
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert f'checkpoint {path} does not fit the model' in proc.stderr
    assert 'size mismatch' not in out
    assert 'action/frame_top1' not in out
    return out


def test_test_tool_refuses_a_wider_checkpoint(tiny_demo_root, tmp_path,
                                              wider_checkpoint):
    proc = run_tool('test.py', TINY, wider_checkpoint, '--work-dir',
                    tmp_path / 'test', '--cfg-options',
                    *data_options(tiny_demo_root), check=False)
    out = refused(proc, wider_checkpoint)
    shapes = SHAPE_LINE.findall(out)
    assert len(shapes) == 5, out[-3000:]
    assert 'backbone.patch_embed' in shapes[0]
    assert re.search(r'\.\.\. and \d+ more', out)
    assert 'Traceback' not in proc.stderr


def test_test_tool_refuses_a_checkpoint_with_a_key_removed(
        tiny_demo_root, tmp_path, general_checkpoint):
    ckpt = torch.load(general_checkpoint, weights_only=False)
    removed = 'head.heads.action_detection.fc_cls.weight'
    assert removed in ckpt['state_dict']
    del ckpt['state_dict'][removed]
    path = tmp_path / 'one_key_less.pth'
    torch.save(ckpt, path)
    proc = run_tool('test.py', TINY, path, '--work-dir', tmp_path / 'test',
                    '--cfg-options', *data_options(tiny_demo_root),
                    check=False)
    out = refused(proc, path)
    assert f'{removed}: in the model, not in the checkpoint' in out
    assert '(1 missing;' in out


def test_load_from_refuses_before_training(tiny_demo_root, tmp_path,
                                           wider_checkpoint):
    work = tmp_path / 'work'
    proc = run_tool('train.py', TINY, '--work-dir', work, '--cfg-options',
                    *data_options(tiny_demo_root),
                    f'load_from={wider_checkpoint}', check=False)
    out = refused(proc, wider_checkpoint)
    assert 'Epoch(train)' not in out
    assert not list(work.glob('*.pth'))


def test_lora_finetune_loads_the_general_checkpoint(tiny_demo_root,
                                                    tmp_path,
                                                    general_checkpoint):
    work = tmp_path / 'lora'
    proc = run_tool('train.py', TINY_LORA, '--work-dir', work,
                    '--cfg-options', *data_options(tiny_demo_root),
                    f'load_from={general_checkpoint}')
    out = proc.stdout + proc.stderr
    # 4 linears (qkv, proj, fc1, fc2) x 2 blocks x 2 factors x 4 domains
    assert (f'{general_checkpoint}: 64 keys in the model are not in the '
            'checkpoint and keep their initial values, as '
            'load_from_allow_missing allows') in out
    # one line in the terminal; every key in the log file
    assert out.count('.lora_') == 3
    log = find_one(work, '*.log').read_text()
    listed = log.split('Checkpoint keys let through by '
                       'load_from_allow_missing:\n')[1]
    assert len([k for k in listed.splitlines()[:64] if '.lora_' in k]) == 64
    tuned = torch.load(work / 'epoch_1.pth', weights_only=False)['state_dict']
    general = torch.load(general_checkpoint, weights_only=False)['state_dict']
    # the frozen base is the general model's, not a random one
    for key, value in general.items():
        if key.startswith('backbone.') and value.is_floating_point():
            torch.testing.assert_close(tuned[key], value, msg=key)
    lora_b = [k for k in tuned if '.lora_B.sports' in k]
    assert lora_b and any(tuned[k].abs().sum() > 0 for k in lora_b)


def test_lora_finetune_refuses_a_wider_checkpoint(tiny_demo_root, tmp_path,
                                                  wider_checkpoint):
    work = tmp_path / 'lora'
    proc = run_tool('train.py', TINY_LORA, '--work-dir', work,
                    '--cfg-options', *data_options(tiny_demo_root),
                    f'load_from={wider_checkpoint}', check=False)
    out = refused(proc, wider_checkpoint)
    assert SHAPE_LINE.search(out)
    # the allowed keys are not reported as faults
    assert '.lora_' not in proc.stderr.split('train.py: error:')[1]
    assert not list(work.glob('*.pth'))


def test_resume_with_a_changed_model_names_the_checkpoint(
        tiny_demo_root, tmp_path, general_checkpoint):
    work = tmp_path / 'work'
    work.mkdir()
    resumable = work / 'epoch_1.pth'
    shutil.copy(general_checkpoint, resumable)
    proc = run_tool('train.py', TINY, '--work-dir', work, '--resume',
                    '--cfg-options', *data_options(tiny_demo_root), WIDER,
                    check=False)
    out = refused(proc, resumable)
    assert f'--resume: resuming from {resumable}' in out
    assert SHAPE_LINE.search(out)
    assert find_one(work, '*.log')
