import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.optim import OptimWrapper

import hvlm.evaluation  # noqa: F401
import hvlm.models  # noqa: F401
from hvlm.registry import METRICS, MODELS
from hvlm.structures import VideoDataSample

CONFIG = osp.join(
    osp.dirname(__file__), '../../../configs/_base_/models/hvlm_small.py')
NUM_CLASSES = 3


def tiny_model(**head):
    return MODELS.build(
        dict(
            type='HierarchicalVLM',
            data_preprocessor=dict(
                type='VideoDataPreprocessor', mean=[128.] * 3,
                std=[64.] * 3),
            backbone=dict(
                type='HierarchicalVideoEncoder',
                patch_size=(2, 4, 4),
                embed_dims=(16, 32),
                depths=(1, 1),
                num_heads=(2, 4),
                drop_path_rate=0.),
            head=dict(
                type='MultiTaskHead',
                heads=dict(
                    action_detection=dict(
                        type='ActionDetectionHead',
                        in_channels=32,
                        num_classes=NUM_CLASSES,
                        dropout=0.,
                        **head)))))


def synthetic_batch(num_videos=6, num_clips=2, clip_len=4, seed=0):
    """Clips whose frames are bright in the channel of their label.

    Labels change every 2 frames (one tubelet), so the model must keep
    clips and time steps in order to fit them.
    """
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(num_videos):
        labels = torch.randint(
            0, NUM_CLASSES, (num_clips * clip_len // 2, ),
            generator=g).repeat_interleave(2)  # [num_clips * clip_len]
        video = torch.randint(
            0, 60, (num_clips * clip_len, 3, 8, 8), generator=g)
        video[torch.arange(len(labels)), labels] += 180
        video = video.reshape(num_clips, clip_len, 3, 8, 8).permute(
            0, 2, 1, 3, 4)  # [num_clips, C, T, H, W]
        inputs.append(video.to(torch.uint8).contiguous())
        sample = VideoDataSample(metainfo=dict(video_id=f'v{i}'))
        sample.gt_frame_labels = labels
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples, skipped=[])


def test_modes_and_shapes():
    torch.manual_seed(0)
    model = tiny_model()
    data = model.data_preprocessor(synthetic_batch(num_videos=2))
    assert data['inputs'].shape == (2, 2, 3, 4, 8, 8)
    raw = model(data['inputs'], mode='tensor')
    assert raw['action_detection'].shape == (2, 8, NUM_CLASSES)
    losses = model(**data, mode='loss')
    # classification (and actionness): the detection head's losses only
    assert 'loss_action_detection_cls' in losses
    assert all(k.startswith('loss_action_detection_') for k in losses)
    out = model(**data, mode='predict')
    assert out[0].pred_frame_labels.shape == (8, )
    assert out[1].pred_frame_scores.shape == (8, NUM_CLASSES)
    with pytest.raises(ValueError, match="mode='train' is not one of"):
        model(data['inputs'], mode='train')
    with pytest.raises(ValueError, match='one data sample per video'):
        model(data['inputs'], data['data_samples'][:1], mode='loss')


def test_empty_batch():
    model = tiny_model()
    data = model.data_preprocessor(dict(inputs=[], data_samples=[],
                                        skipped=['a']))
    assert model(**data, mode='predict') == []
    # train_step: zero loss, every parameter still gets a gradient
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    before = [p.detach().clone() for p in model.parameters()]
    log_vars = model.train_step(
        dict(inputs=[], data_samples=[], skipped=['a']), optim)
    assert log_vars['loss'].item() == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_overfits_synthetic_clips_and_scores_with_the_metric():
    torch.manual_seed(0)
    model = tiny_model()
    batch = synthetic_batch()
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=3e-3))
    metric = METRICS.build(dict(type='FrameActionMetric'))

    def evaluate():
        model.eval()
        with torch.no_grad():
            out = model.test_step(batch)
        metric.process({}, [s.to_dict() for s in out])
        return metric.evaluate(len(out))

    before = evaluate()
    model.train()
    losses = [model.train_step(batch, optim)['loss'].item()
              for _ in range(40)]
    after = evaluate()
    assert losses[-1] < 0.25 * losses[0], losses
    assert before['action/frame_top1'] < 0.5, before
    assert after['action/frame_top1'] == 1.0, after
    # the labels are balanced enough that fitting them is not trivial
    assert after['action/chance_top1'] < 0.6, after


def test_config_builds_under_runner_default_scope():
    cfg = Config.fromfile(CONFIG)
    # The Runner sets default_scope='hvlm'; the component registries
    # (ATTENTIONS, MERGERS, HEADS) must still resolve under it.
    with DefaultScope.overwrite_default_scope('hvlm'):
        model = MODELS.build(cfg.model)
        metrics = [METRICS.build(m) for m in cfg.val_evaluator]
    assert 'FrameActionMetric' in [type(m).__name__ for m in metrics]
    x = [torch.randint(0, 256, (1, 3, 8, 64, 64), dtype=torch.uint8)]
    s = VideoDataSample()
    s.gt_frame_labels = torch.zeros(8)
    losses = model(**model.data_preprocessor(
        dict(inputs=x, data_samples=[s])), mode='loss')
    # an untrained 150-way classifier starts near log(150) (the logged loss
    # is multiplied by the task's weight)
    weight = cfg.model.head.task_weights.action_detection
    assert abs(losses['loss_action_detection_cls'].item() / weight -
               torch.log(torch.tensor(150.)).item()) < 1.5
