"""Read a video's cached stem tokens instead of decoding it."""
import os.path as osp
from typing import Dict

from mmcv.transforms import BaseTransform

from hvlm.registry import TRANSFORMS
from ..feature_cache import read_index, read_video_features


@TRANSFORMS.register_module()
class LoadCachedFeatures(BaseTransform):
    """Load the patch tokens that ``tools/misc/extract_features.py`` wrote
    for ``results['video_id']``, in place of DecordInit, SampleFrames,
    DecordDecode and the crops: the pipeline is ``[LoadCachedFeatures,
    PackVideoInputs]`` and the model's data preprocessor has
    ``cached_features=True``.

    The frames are the ones sampled at extraction (the split's
    deterministic test-mode sampling), so random temporal sampling and
    spatial augmentation are replaced by that fixed sampling, as in
    Video-ChatGPT's and LongVLM's cached training. Their ``frame_inds`` and
    ``frame_times`` come from the file, so frame labels and heads that
    read times line up with the tokens.

    Required keys: ``video_id``.
    Added keys: ``imgs`` float32 ``[num_clips, T, h, w, C]``,
    ``frame_inds``, ``frame_times``, ``avg_fps``, ``total_frames``,
    ``img_shape``, ``feature_encoder`` (the encoder identity, which the
    model checks against its own stem).

    Args:
        cache_dir (str): Directory holding ``index.json``.
    """

    def __init__(self, cache_dir: str) -> None:
        if not cache_dir:
            raise ValueError(
                f'LoadCachedFeatures: cache_dir={cache_dir!r}; set it to the '
                '--out directory of tools/misc/extract_features.py')
        self.cache_dir = cache_dir
        self._index = None  # read in the worker, on first use

    def _load_index(self) -> dict:
        if self._index is None:
            index = read_index(self.cache_dir)
            if index is None:
                raise FileNotFoundError(
                    f'{osp.join(self.cache_dir, "index.json")} does not '
                    'exist: run tools/misc/extract_features.py first')
            self._index = index
        return self._index

    def transform(self, results: Dict) -> Dict:
        index = self._load_index()
        video_id = results['video_id']
        name = index['videos'].get(video_id)
        if name is None:
            raise KeyError(
                f'video_id {video_id!r} is not in '
                f'{osp.join(self.cache_dir, "index.json")} '
                f'({len(index["videos"])} videos); extract this split')
        data = read_video_features(
            osp.join(self.cache_dir, 'videos', name), video_id,
            index['encoder'], index['config_hash'])
        results['imgs'] = data['patch_tokens'].numpy()  # [nc, T, h, w, C]
        results['frame_inds'] = data['frame_inds'].numpy()
        results['frame_times'] = data['frame_times'].numpy()
        for key in ('avg_fps', 'total_frames', 'img_shape'):
            if key in data:
                results[key] = data[key]
        results['feature_encoder'] = index['encoder']
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(cache_dir={self.cache_dir!r})'
