"""Batch VideoDataset items, dropping the placeholders of unreadable videos."""
from typing import Dict, List, Sequence

from mmengine.dataset import pseudo_collate

from hvlm.registry import FUNCTIONS


@FUNCTIONS.register_module()
def video_collate(data_batch: Sequence[dict]) -> Dict[str, List]:
    """Collate ``dict(inputs, data_samples, skipped)`` items into a batch.

    Items whose ``inputs`` is None (placeholders for unreadable test videos)
    are dropped; the ``skipped`` lists of all items are joined, so hooks can
    count and name what was skipped. ``inputs`` stays a list of tensors
    ``[num_clips, C, T, H, W]`` (the model's data preprocessor stacks them).

    Args:
        data_batch (Sequence[dict]): Items from :class:`VideoDataset`.

    Returns:
        dict: ``inputs=[Tensor, ...]``, ``data_samples=[VideoDataSample,
        ...]`` (same length, possibly 0) and ``skipped=[(filename, reason),
        ...]``.
    """
    skipped = [s for item in data_batch for s in item.get('skipped', ())]
    kept = [{
        k: v
        for k, v in item.items() if k != 'skipped'
    } for item in data_batch if item.get('inputs') is not None]
    if not kept:
        return dict(inputs=[], data_samples=[], skipped=skipped)
    batch = pseudo_collate(kept)
    batch['skipped'] = skipped
    return batch


@FUNCTIONS.register_module()
def scene_graph_collate(data_batch: Sequence[dict]) -> Dict[str, List]:
    """Batch ``PackSceneGraphInputs`` items: ``inputs`` stays a list of
    ``[T, 3, H, W]`` videos (lengths differ) and ``data_samples`` a list of
    dicts (``pseudo_collate`` would merge the dicts key by key)."""
    return dict(inputs=[item['inputs'] for item in data_batch],
                data_samples=[item['data_samples'] for item in data_batch])
