"""HierarchicalVLM with LoRA adapters, a domain router and experts."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import hvlm.evaluation  # noqa: F401
import hvlm.models  # noqa: F401
from hvlm.registry import METRICS, MODELS
from hvlm.structures import VideoDataSample

DOMAINS = ('general', 'sports', 'tutorials', 'news')
TINY = osp.join(osp.dirname(__file__), '../../data/configs/tiny_sports.py')


def model_cfg(**extra):
    cfg = dict(
        type='HierarchicalVLM',
        data_preprocessor=dict(type='VideoDataPreprocessor', mean=[128.] * 3,
                               std=[64.] * 3),
        backbone=dict(type='HierarchicalVideoEncoder', patch_size=(2, 4, 4),
                      embed_dims=(16, 32), depths=(1, 1), num_heads=(2, 4),
                      drop_path_rate=0.),
        head=dict(type='MultiTaskHead', heads=dict(action_detection=dict(
            type='ActionDetectionHead', in_channels=32, num_classes=3,
            dropout=0.))))
    cfg.update(extra)
    return cfg


def adapter(**kw):
    return dict(type='LoRAAdapter', domains=DOMAINS, rank=4, alpha=8.,
                dropout=0., **kw)


def batch(domains, num_clips=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i, d in enumerate(domains):
        inputs.append(torch.randint(0, 256, (num_clips, 3, 4, 8, 8),
                                    generator=g, dtype=torch.uint8))
        s = VideoDataSample(metainfo=dict(video_id=f'v{i}', domain=d))
        s.gt_frame_labels = torch.randint(0, 3, (num_clips * 4, ),
                                          generator=g)
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def randomise_lora(model):
    with torch.no_grad():
        for p in model.adapter.lora_parameters():
            p.normal_(0, 0.2)


def test_per_sample_domains_from_metadata_equal_each_video_alone():
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(adapter=adapter())).eval()
    randomise_lora(model)
    data = model.data_preprocessor(
        batch(['sports', 'news', 'unknown', 'sports']))
    mixed = model(**data, mode='predict')
    for i in range(4):
        alone = model(data['inputs'][i:i + 1], data['data_samples'][i:i + 1],
                      mode='predict')
        torch.testing.assert_close(mixed[i].pred_frame_scores,
                                   alone[0].pred_frame_scores)
    # the unknown domain used the base weights
    base = MODELS.build(model_cfg()).eval()
    base.load_state_dict(model.state_dict(), strict=False)
    out = base(data['inputs'][2:3], data['data_samples'][2:3],
               mode='predict')
    torch.testing.assert_close(out[0].pred_frame_scores,
                               mixed[2].pred_frame_scores)


def test_loss_trains_each_videos_domain_and_the_router():
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(
        adapter=adapter(),
        router=dict(type='DomainRouter', domains=DOMAINS, mode='soft'),
        experts=dict(type='DomainExperts', domains=DOMAINS)))
    assert model.router.classifier[1].in_features == 16  # stem width
    data = model.data_preprocessor(batch(['sports', 'news', 'mystery']),
                                   training=True)
    losses = model(**data, mode='loss')
    assert {'loss_action_detection_cls', 'loss_router_cls',
            'loss_router_balance', 'router_acc'} <= set(losses)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    layer = next(iter(model.adapter.layers.values()))

    def moved(name):
        g = layer.lora_B[name].grad
        return g is not None and g.abs().sum() > 0
    # metadata picks sports/news; the unknown video goes through the soft
    # router, so every domain's B gets a gradient from it
    assert moved('sports') and moved('news') and moved('general')
    assert model.router.classifier[1].weight.grad.abs().sum() > 0
    assert model.experts.experts['sports'][-1].weight.grad.abs().sum() > 0


def test_predict_writes_the_routed_domain_and_metric_reads_it():
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(
        adapter=adapter(),
        router=dict(type='DomainRouter', domains=DOMAINS, mode='hard')))
    randomise_lora(model)
    model.eval()
    data = model.data_preprocessor(batch(['sports', 'news', 'general']))
    out = model(**data, mode='predict')
    for s in out:
        assert s.pred_domain in DOMAINS
        torch.testing.assert_close(s.pred_domain_scores.sum(),
                                   torch.tensor(1.))
    metric = METRICS.build(dict(type='DomainAccuracy'))
    metric.process({}, [s.to_dict() for s in out])
    res = metric.evaluate(3)
    want = sum(s.pred_domain == s.domain for s in out) / 3
    assert res['domain/top1'] == pytest.approx(want)
    # a forced domain routes everything there and allows a merged adapter
    forced = MODELS.build(model_cfg(
        adapter=adapter(),
        router=dict(type='DomainRouter', domains=DOMAINS,
                    force_domain='news')))
    forced.load_state_dict(model.state_dict())
    forced.eval()
    want = forced(**data, mode='predict')
    scores = [s.pred_frame_scores.clone() for s in want]
    assert [s.pred_domain for s in want] == ['news'] * 3
    forced.adapter.merge('news')
    got = forced(**data, mode='predict')
    for a, b in zip(got, scores):
        torch.testing.assert_close(a.pred_frame_scores, b, atol=1e-5,
                                   rtol=1e-5)


def test_domains_must_agree():
    with pytest.raises(ValueError, match='same domains in the same order'):
        MODELS.build(model_cfg(
            adapter=adapter(),
            router=dict(type='DomainRouter', domains=DOMAINS[::-1])))


def test_freeze_base_in_a_real_runner_keeps_frozen_weights_bit_identical(
        tiny_demo_root, tmp_path):
    """The fine-tune recipe: load a checkpoint, freeze, train one domain's
    LoRA through mmengine's Runner (optimizer, weight decay, clipping)."""
    from hvlm.utils.cli import build_runner
    cfg = Config.fromfile(TINY)
    # a "general" checkpoint: the model without adapters
    base = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'general.pth')
    torch.save(dict(state_dict=base.state_dict(), meta=dict()), ckpt)
    cfg.model.adapter = adapter(freeze_base=True, train_domains=['sports'])
    cfg.model.router = dict(type='DomainRouter', domains=DOMAINS)
    cfg.load_from = ckpt
    # what the general checkpoint cannot have: the LoRA factors and router
    cfg.load_from_allow_missing = [r'\.lora_[AB]\.', r'^router\.']
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg.max_epochs = 2
    cfg.optim_wrapper.optimizer.lr = 0.05
    cfg.val_evaluator = [dict(type='FrameActionMetric'),
                         dict(type='DomainAccuracy')]
    cfg.default_hooks.checkpoint.save_best = None
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    for split, key in (('training', 'train_dataloader'),
                       ('validation', 'val_dataloader'),
                       ('test', 'test_dataloader')):
        cfg[key].dataset.data_root = f'{tiny_demo_root}/{split}'
        cfg[key].dataset.demo = None
    runner = build_runner(cfg)
    runner.train()
    model = runner.model
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained == {f'backbone.{n}.lora_{m}.sports'
                       for n in model.adapter.layers for m in 'AB'}
    state = model.state_dict()
    # every parameter of the loaded checkpoint is untouched (the tokenizer
    # the heads train on the data is extra state, not a parameter)
    for name, value in base.named_parameters():
        assert torch.equal(state[name], value), name
    for name, value in state.items():
        if 'lora_B' in name and not name.endswith('.sports'):
            assert torch.count_nonzero(value) == 0, name
    moved = [n for n in trained if 'lora_B' in n
             and torch.count_nonzero(state[n]) > 0]
    assert moved, 'the sports LoRA did not train'
    # the DomainAccuracy metric ran in validation
    scalars = open(next(
        (tmp_path / 'work').rglob('scalars.json'))).read()
    assert 'domain/top1' in scalars


@pytest.mark.parametrize('domain', ['sports', 'tutorials', 'news'])
def test_domain_and_fine_tune_configs(domain):
    root = osp.join(osp.dirname(__file__), '../../../configs')
    cfg = Config.fromfile(f'{root}/hier_{domain}.py')
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[key].dataset.domains == [domain]
    assert 'adapter' not in cfg.model  # runs from scratch on a fresh clone
    ft = Config.fromfile(f'{root}/hier_{domain}_lora-ft.py')
    assert ft.load_from.startswith('work_dirs/hier_general/')
    assert ft.model.adapter.freeze_base
    assert list(ft.model.adapter.train_domains) == [domain]
    assert ft.train_dataloader.dataset.domains == [domain]
    assert ft.model.adapter.rank == 8 and ft.model.adapter.alpha == 16
