"""ImageClassifier: SSL backbone loading (and refusal), loss/predict, and
TTA averaging probabilities over flips and crops."""
import pytest
import torch
from mmengine.structures import BaseDataElement

from hvlm.models.layers.image_augment import resized_crop
from hvlm.utils import CheckpointLoadError
from hvlm.registry import MODELS

BACKBONE = dict(type='HViT', img_size=16, patch_size=4, embed_dim_rgb=8,
                depths=(1, 1), num_heads=(1, 2))


def classifier(**kwargs):
    return MODELS.build(dict(
        type='ImageClassifier', backbone=BACKBONE,
        head=dict(type='ClsHead', num_classes=3,
                  loss=dict(type='FocalSmoothedCELoss')), **kwargs))


def samples(labels):
    out = []
    for y in labels:
        s = BaseDataElement()
        s.gt_label = torch.tensor(y)
        out.append(s)
    return out


def test_ssl_checkpoint_loads_backbone_or_lists_the_misfit(tmp_path):
    simclr = MODELS.build(dict(type='SimCLR', backbone=BACKBONE))
    path = str(tmp_path / 'simclr.pth')
    torch.save(dict(state_dict=simclr.state_dict(), meta=dict(epoch=1)),
               path)
    model = classifier(ssl_checkpoint=path)
    for k, v in simclr.backbone.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[k], v)
    # init_weights (the Runner's) keeps the pretrained weights
    model.init_weights()
    torch.testing.assert_close(model.backbone.pos_embed,
                               simclr.backbone.pos_embed)
    other = dict(BACKBONE, depths=(1, 2))
    with pytest.raises(CheckpointLoadError) as err:
        MODELS.build(dict(type='ImageClassifier', backbone=other,
                          head=dict(type='ClsHead', num_classes=3),
                          ssl_checkpoint=path))
    assert '1 missing' in str(err.value) or 'missing' in str(err.value)
    assert 'stages.1.1.' in str(err.value)
    torch.save(dict(state_dict={'backbone.extra': torch.zeros(1),
                                **simclr.state_dict()}), path)
    with pytest.raises(CheckpointLoadError, match='extra: in the '
                       'checkpoint, not in the model'):
        classifier(ssl_checkpoint=path)


def test_loss_predict_and_frames():
    model = classifier().eval()
    x = torch.rand(2, 3, 16, 16)
    losses = model(x, samples([0, 2]), mode='loss')
    assert losses['loss_cls'].item() > 0
    out = model(x, samples([0, 2]), mode='predict')
    assert torch.isclose(out[0].pred_score.sum(), torch.tensor(1.))
    assert out[0].pred_label == out[0].pred_score.argmax()
    assert model(torch.rand(2, 4, 3, 16, 16)).shape == (2, 3)
    with pytest.raises(ValueError, match='unlabelled'):
        model(x, samples([-1, 0]), mode='loss')


def test_tta_averages_probabilities_of_flips_and_crops():
    tta = MODELS.build(dict(type='ImageClassifierTTA',
                            module=dict(type='ImageClassifier',
                                        backbone=BACKBONE,
                                        head=dict(type='ClsHead',
                                                  num_classes=3)),
                            crop_ratios=(0.75, ))).eval()
    imgs = [torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
            for _ in range(2)]
    out = tta.test_step(dict(inputs=imgs, data_samples=samples([0, 1])))
    module = tta.module
    x = torch.stack(imgs).float() / 255
    # the centre crop of side 12 resampled to 16 (resized_crop is checked
    # against its numpy definition in test_simclr_views)
    crop = resized_crop(x, torch.tensor([[2., 2., 12., 12.]] * 2), (16, 16))
    views = [x, crop, x.flip(-1), crop.flip(-1)]
    for got, expected in zip(tta.views(x), views):
        torch.testing.assert_close(got, expected)
    probs = torch.stack([module(v).softmax(-1) for v in views]).mean(0)
    torch.testing.assert_close(torch.stack([s.pred_score for s in out]),
                               probs, atol=1e-5, rtol=1e-4)
    assert [int(s.pred_label) for s in out] == probs.argmax(1).tolist()


def test_mixing_augments_take_the_heads_classes():
    mix = [dict(type='RandomBatchAugment',
                augments=[dict(type='MixUp'), dict(type='CutMix')])]
    model = classifier(data_preprocessor=dict(type='ImageDataPreprocessor',
                                              batch_augments=mix))
    mixers = model.data_preprocessor.batch_augments[0].augments
    assert [m.num_classes for m in mixers] == [3, 3]
    with pytest.raises(ValueError, match='num_classes=5 but the head'):
        classifier(data_preprocessor=dict(
            type='ImageDataPreprocessor',
            batch_augments=[dict(type='MixUp', num_classes=5)]))
