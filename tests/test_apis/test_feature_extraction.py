"""tools/misc/extract_features.py and training from its cache."""
import json
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from safetensors.torch import load_file

from hvlm.apis.feature_extraction import extract_features
from hvlm.models.text.tokenizer import WordTokenizer
from hvlm.datasets.feature_cache import (read_index, verify_video_file,
                                         video_file_name)
from hvlm.registry import DATASETS, MODELS
from hvlm.utils import register_all_modules
from tests.hf_checkpoints import save_tiny_model
from tests.dist_helpers import free_port
from tests.test_tools.conftest import REPO

CONFIG = str(REPO / 'configs' / 'pretrained' / 'hier_sports_clip-vitb16.py')


def small_config(root, pretrained):
    cfg = Config.fromfile(CONFIG)
    for split, sub in (('train', 'training'), ('val', 'validation'),
                       ('test', 'test')):
        cfg[f'{split}_dataloader'].dataset.data_root = f'{root}/{sub}'
    cfg.model.backbone.stem.pretrained = str(pretrained)
    return cfg


@pytest.fixture(scope='module')
def tiny_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp('cache_clip') / 'tiny_clip'
    save_tiny_model(str(path), 'clip')
    return path


@pytest.fixture(scope='module')
def cache(tiny_demo_root, tiny_clip, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('feature_cache'))
    cfg = small_config(tiny_demo_root, tiny_clip)
    index = extract_features(cfg, 'train', out, progress=False)
    return cfg, out, index


def test_index_names_every_video_and_the_encoder(cache):
    cfg, out, index_path = cache
    index = json.load(open(index_path))
    assert index['encoder'].startswith('clip:tiny_clip:')
    register_all_modules()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    ids = {dataset.get_data_info(i)['video_id'] for i in range(len(dataset))}
    assert set(index['videos']) == ids and len(ids) >= 3
    for video_id, name in index['videos'].items():
        verify_video_file(osp.join(out, 'videos', name), index['encoder'],
                          index['config_hash'])


def test_training_losses_from_cache_equal_on_the_fly(cache):
    """Same weights, same frames: the losses (and so the gradients'
    source) agree whether the ViT runs or its tokens come from disk."""
    cfg, out, _ = cache
    register_all_modules()
    live = MODELS.build(cfg.model)
    cached_cfg = cfg.model.copy()
    cached_cfg.data_preprocessor = dict(cached_cfg.data_preprocessor,
                                        cached_features=True)
    cached = MODELS.build(cached_cfg)
    cached.load_state_dict(live.state_dict())

    ds_cfg = cfg.train_dataloader.dataset.copy()
    ds_cfg.pipeline = cfg.test_dataloader.dataset.pipeline
    frames = DATASETS.build(ds_cfg)
    ds_cfg.pipeline = [dict(type='LoadCachedFeatures', cache_dir=out),
                       dict(type='PackVideoInputs')]
    tokens = DATASETS.build(ds_cfg)
    batch_frames = pseudo_collate([frames[i] for i in range(3)])
    batch_tokens = pseudo_collate([tokens[i] for i in range(3)])
    assert batch_tokens['inputs'][0].dim() == 5  # [nc, T, h, w, C]
    for a, b in zip(batch_frames['data_samples'],
                    batch_tokens['data_samples']):
        assert list(a.frame_inds) == list(b.frame_inds)

    texts = [str(v) for sample in batch_frames['data_samples']
             for item in (sample.get('gt_qa', []) +
                          sample.get('gt_captions', []))
             for v in item.values()]
    tokenizer = WordTokenizer.train(texts + ['a video'])
    for model in (live, cached):
        for module in model.modules():
            if hasattr(module, 'set_tokenizer'):
                module.set_tokenizer(tokenizer)

    losses, vit_calls = [], []
    for model, batch in ((live, batch_frames), (cached, batch_tokens)):
        calls = []
        hook = model.backbone.patch_embed.encoder.register_forward_hook(
            lambda *args: calls.append(1))
        model.train()
        torch.manual_seed(0)
        data = model.data_preprocessor(batch, True)
        losses.append(model(**data, mode='loss'))
        hook.remove()
        vit_calls.append(len(calls))
    assert vit_calls[0] > 0 and vit_calls[1] == 0  # the cache skips the ViT
    assert losses[0].keys() == losses[1].keys() and losses[0]
    for key in losses[0]:
        torch.testing.assert_close(losses[1][key], losses[0][key],
                                   atol=1e-6, rtol=1e-6, msg=key)

    # a cache made by another encoder is refused by the model, by name
    batch_tokens['data_samples'][0].set_metainfo(
        dict(feature_encoder='clip:other:0'))
    with pytest.raises(ValueError, match="'clip:other:0'"):
        cached(**cached.data_preprocessor(batch_tokens), mode='loss')


def test_resume_keeps_good_files_and_remakes_truncated(
        tiny_demo_root, tiny_clip, tmp_path):
    cfg = small_config(tiny_demo_root, tiny_clip)
    out = str(tmp_path / 'cache')
    extract_features(cfg, 'train', out, progress=False)
    index = read_index(out)
    names = sorted(index['videos'].values())
    # as a killed run leaves it: no index, one file cut short, one missing
    os.remove(osp.join(out, 'index.json'))
    cut, gone = (osp.join(out, 'videos', n) for n in names[:2])
    size = osp.getsize(cut)
    with open(cut, 'r+b') as f:
        f.truncate(size // 2)
    os.remove(gone)
    # and the temporary file of the write it was killed in (its writer's
    # pid, 999999, is not running)
    host = re.sub(r'[^A-Za-z0-9-]', '-', socket.gethostname())
    stray = osp.join(out, 'videos', f'.{names[1]}.{host}.999999.abcdefgh.tmp')
    with open(stray, 'wb') as f:
        f.write(b'partial')
    kept = {n: os.stat(osp.join(out, 'videos', n)).st_mtime_ns
            for n in names[2:]}
    with pytest.raises(ValueError, match='truncated'):
        verify_video_file(cut, index['encoder'], index['config_hash'])

    extract_features(cfg, 'train', out, progress=False)
    assert read_index(out)['videos'] == index['videos']
    assert osp.getsize(cut) == size and osp.exists(gone)
    assert not osp.exists(stray)
    # the good files were not rewritten
    assert kept == {n: os.stat(osp.join(out, 'videos', n)).st_mtime_ns
                    for n in names[2:]}


def test_cache_of_another_encoder_or_config_is_refused(
        cache, tiny_demo_root, tmp_path):
    cfg, out, _ = cache
    index = read_index(out)
    other = tmp_path / 'tiny_clip'  # same name, other weights
    save_tiny_model(str(other), 'clip', seed=1)
    with open(other / 'config.json') as f:
        config = json.load(f)
    config['vision_config']['layer_norm_eps'] = 1e-6
    with open(other / 'config.json', 'w') as f:
        json.dump(config, f)
    with pytest.raises(ValueError) as err:
        extract_features(small_config(tiny_demo_root, other), 'train', out,
                         progress=False)
    assert index['encoder'] in str(err.value) and 'index.json' in str(
        err.value)

    # without the index (a killed run), each file's own metadata refuses
    import shutil
    copy = tmp_path / 'no_index'
    shutil.copytree(out, copy)
    os.remove(copy / 'index.json')
    with pytest.raises(ValueError, match=r"\.safetensors: encoder="):
        extract_features(small_config(tiny_demo_root, other), 'train',
                         str(copy), progress=False)

    changed = small_config(tiny_demo_root, cfg.model.backbone.stem.pretrained)
    changed.test_dataloader.dataset.pipeline[1]['clip_len'] = 2
    with pytest.raises(ValueError, match=index['config_hash']):
        extract_features(changed, 'train', out, progress=False)


def test_loader_names_file_and_key(cache, tmp_path):
    cfg, out, _ = cache
    from hvlm.datasets.transforms import LoadCachedFeatures
    index = read_index(out)
    video_id = sorted(index['videos'])[0]
    with pytest.raises(KeyError, match="'nope'"):
        LoadCachedFeatures(out).transform(dict(video_id='nope'))
    # a file whose metadata names another video
    import shutil
    copy = tmp_path / 'copy'
    shutil.copytree(out, copy)
    other = sorted(index['videos'])[1]
    shutil.copy(copy / 'videos' / index['videos'][other],
                copy / 'videos' / index['videos'][video_id])
    with pytest.raises(ValueError, match=f"video_id={other!r}, expected "
                       f"{video_id!r}"):
        LoadCachedFeatures(str(copy)).transform(dict(video_id=video_id))
    assert video_file_name('a/b c') != video_file_name('a_b_c')


@pytest.mark.slow
def test_tool_on_two_ranks_matches_one_process(cache, tiny_demo_root,
                                               tiny_clip, tmp_path):
    """torchrun with 2 gloo ranks: each encodes its half, rank 0 writes the
    index, and the files hold the tokens one process wrote."""
    cfg, single, _ = cache
    out = tmp_path / 'cache'
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
         '2', '--master_port', str(free_port()),
         str(REPO / 'tools' / 'misc' / 'extract_features.py'), CONFIG,
         '--split', 'train', '--out', str(out), '--no-progress',
         '--cfg-options', f'model.backbone.stem.pretrained={tiny_clip}',
         f'train_dataloader.dataset.data_root={tiny_demo_root}/training',
         f'test_dataloader.dataset.data_root={tiny_demo_root}/test'],
        env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    index, ref = read_index(str(out)), read_index(single)
    assert index['videos'] == ref['videos']
    assert index['encoder'] == ref['encoder']
    counts = [int(n) for n in re.findall(r'rank \d: (\d+) videos encoded',
                                         log)]
    assert sorted(counts) == [len(ref['videos']) // 2,
                              (len(ref['videos']) + 1) // 2]
    for name in ref['videos'].values():
        a = load_file(str(out / 'videos' / name))
        b = load_file(osp.join(single, 'videos', name))
        torch.testing.assert_close(a['patch_tokens'], b['patch_tokens'])
        assert torch.equal(a['frame_inds'], b['frame_inds'])


@pytest.mark.slow
def test_train_py_from_the_cache(cache, tiny_demo_root, tiny_clip, tmp_path):
    """The shipped cached config, through tools/train.py: one epoch with
    validation, the ViT never run on frames (no resize line logged)."""
    from tests.test_tools.conftest import data_options, find_one, run_tool
    from tests.test_tools.test_train_pretrained import SMALL
    cfg, train_cache, _ = cache
    val_cache = str(tmp_path / 'val_cache')
    extract_features(cfg, 'val', val_cache, progress=False)
    config = str(REPO / 'configs' / 'pretrained' /
                 'hier_sports_clip-vitb16_cached.py')
    work = tmp_path / 'work'
    run_tool('train.py', config, '--work-dir', work, '--cfg-options',
             f'model.backbone.stem.pretrained={tiny_clip}',
             f'train_dataloader.dataset.pipeline.0.cache_dir={train_cache}',
             f'val_dataloader.dataset.pipeline.0.cache_dir={val_cache}',
             f'test_dataloader.dataset.pipeline.0.cache_dir={val_cache}',
             *data_options(tiny_demo_root), *SMALL, timeout=600)
    log = find_one(work, '*.log').read_text()
    assert 'Epoch(train)' in log and 'action/frame_top1' in log
    assert 'are resized to' not in log


def test_interrupted_run_loses_nothing_written(tiny_demo_root, tiny_clip,
                                               tmp_path, monkeypatch):
    """Ctrl-C during the second video: the first video's file stays and
    verifies, no index is written, and the next run encodes only the
    rest."""
    import hvlm.apis.feature_extraction as extraction
    cfg = small_config(tiny_demo_root, tiny_clip)
    out = str(tmp_path / 'cache')
    encode, calls = extraction._encode_one, []

    def interrupted(*args):
        calls.append(args[-1]['video_id'])
        if len(calls) == 2:
            raise KeyboardInterrupt
        encode(*args)

    monkeypatch.setattr(extraction, '_encode_one', interrupted)
    with pytest.raises(KeyboardInterrupt):
        extract_features(cfg, 'train', out, progress=False)
    assert read_index(out) is None
    written = os.listdir(osp.join(out, 'videos'))
    assert written == [video_file_name(calls[0])]
    first = osp.join(out, 'videos', written[0])
    stamp = os.stat(first).st_mtime_ns

    calls.clear()
    monkeypatch.setattr(extraction, '_encode_one', lambda *a: (
        calls.append(a[-1]['video_id']), encode(*a)))
    extract_features(cfg, 'train', out, progress=False)
    index = read_index(out)
    assert len(calls) == len(index['videos']) - 1
    assert os.stat(first).st_mtime_ns == stamp
    verify_video_file(first, index['encoder'], index['config_hash'])
