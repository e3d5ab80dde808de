"""Pack a recognition sample: the clip and its one class label."""
from typing import Dict

import torch

from hvlm.registry import TRANSFORMS
from .formatting import PackVideoInputs


@TRANSFORMS.register_module()
class PackRecognitionInputs(PackVideoInputs):
    """:class:`PackVideoInputs` plus the video's class.

    Required keys: those of PackVideoInputs and ``label`` (int, the index
    in the dataset's ``classes``).
    Adds ``gt_label`` (``LongTensor [1]``) to the data sample, and
    ``label`` to its metainfo.
    """

    def transform(self, results: Dict) -> Dict:
        packed = super().transform(results)
        label = int(results['label'])
        sample = packed['data_samples']
        sample.gt_label = torch.tensor([label], dtype=torch.long)
        sample.set_metainfo(dict(label=label))
        return packed
