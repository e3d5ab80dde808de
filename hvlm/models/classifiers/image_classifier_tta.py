"""Test-time augmentation of ImageClassifier through mmengine's
BaseTTAModel."""
from typing import List, Optional, Sequence

import torch
from mmengine.model import BaseTTAModel

from hvlm.registry import MODELS
from ..layers.image_augment import resized_crop


@MODELS.register_module()
class ImageClassifierTTA(BaseTTAModel):
    """Average the class *probabilities* of augmented views of each image.

    The views are made from the preprocessed batch, in torch: the image,
    its mirror (``flip``) and, for each ``crop_ratios`` entry ``r``, the
    centre crop of side ``r`` resized back to the input size (and its
    mirror with ``flip``). :meth:`merge_preds` averages ``pred_score`` over
    views and takes the arg-max as ``pred_label``; averaged probabilities
    are only ever scored by metrics, never fed back into a loss (the seed
    did that).

    ``tools/test.py --tta`` (or ``use_tta = True`` in the config) wraps
    the config's model in ``tta_model``.

    Args:
        module (dict): The ``ImageClassifier`` config.
        flip (bool): Add mirrored views.
        crop_ratios (Sequence[float]): Centre-crop sides, fractions of the
            image side.
    """

    def __init__(self,
                 module: dict,
                 flip: bool = True,
                 crop_ratios: Sequence[float] = (0.875, ),
                 data_preprocessor: Optional[dict] = None) -> None:
        if isinstance(module, dict):
            module = MODELS.build(module)
        super().__init__(module=module, data_preprocessor=data_preprocessor)
        if any(not 0 < r <= 1 for r in crop_ratios):
            raise ValueError(f'crop_ratios={tuple(crop_ratios)} must be in '
                             '(0, 1]')
        self.flip, self.crop_ratios = flip, tuple(crop_ratios)

    def views(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        """The augmented copies of ``inputs`` ``[B, C, H, W]`` (or frames
        ``[B, T, C, H, W]``, each frame transformed alike)."""
        if inputs.dim() == 5:
            B, T = inputs.shape[:2]
            return [v.view(B, T, *v.shape[1:])
                    for v in self.views(inputs.flatten(0, 1))]
        H, W = inputs.shape[-2:]
        views = [inputs]
        for r in self.crop_ratios:
            h, w = H * r, W * r
            box = inputs.new_tensor([(H - h) / 2, (W - w) / 2, h, w])
            views.append(
                resized_crop(inputs, box.expand(inputs.shape[0], 4), (H, W)))
        if self.flip:
            views += [v.flip(-1) for v in views]
        return views

    def test_step(self, data) -> List:
        data = self.module.data_preprocessor(data, False)
        inputs, samples = data['inputs'], data['data_samples']
        if inputs is None:
            return []
        outputs = []
        for view in self.views(inputs):
            copies = [s.clone() for s in samples]
            outputs.append(self.module(view, copies, mode='predict'))
        # [num_views][B] -> [B][num_views]
        return self.merge_preds([list(x) for x in zip(*outputs)])

    def merge_preds(self, data_samples_list: List[List]) -> List:
        merged = []
        for views in data_samples_list:
            sample = views[0]
            score = torch.stack([v.pred_score for v in views]).mean(0)
            sample.set_field(score, 'pred_score')
            sample.set_field(score.argmax(), 'pred_label')
            merged.append(sample)
        return merged
