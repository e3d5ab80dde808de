"""What every prompt learner of CLIPRecognizer provides."""
from typing import Dict, List, Sequence

from mmengine.model import BaseModule
from torch import Tensor

from hvlm.models.layers import ClipTowers, encode_images


class PromptLearner(BaseModule):
    """Base of the prompt learners (``VideoCoOp``, ``DualCoOp``, ``ViDOP``).

    A learner owns only its own parameters; the frozen CLIP is handed in as
    :class:`ClipTowers` on every call, so a checkpoint of the learner holds
    the prompts alone and CLIP's weights are never registered twice.

    :meth:`setup` runs once, when the recognizer has loaded CLIP, to size
    and initialise the prompts. :meth:`text_features` is called once per
    step for the whole class set; :meth:`image_features` once per batch of
    frames.

    Attributes:
        fixed_text (bool): The text features do not depend on learned
            parameters (the recognizer then computes them once per class
            set and caches them).
        learns_visual (bool): :meth:`image_features` uses learned
            parameters (otherwise the image tower runs without autograd).
        per_clip_text (bool): The class features depend on the clip (STT):
            the recognizer calls :meth:`start_batch` before encoding a
            batch's frames and then ``clip_text_features`` (``[clips, K,
            D]``) instead of :meth:`text_features`.
    """
    fixed_text = False
    learns_visual = False
    per_clip_text = False

    def __init__(self, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self._word_ids: Dict[str, List[int]] = {}

    def setup(self, towers: ClipTowers) -> None:
        """Create and initialise the prompts for this CLIP."""

    def start_batch(self) -> None:
        """Forget what the previous batch's frames left (STT)."""

    def word_ids(self, towers: ClipTowers, text: str) -> List[int]:
        """Token ids of ``text`` (cached: class names repeat every step)."""
        if text not in self._word_ids:
            self._word_ids[text] = towers.word_ids(text)
        return self._word_ids[text]

    def text_features(self, towers: ClipTowers,
                      class_texts: Sequence[str]) -> Tensor:
        """``[K, D]`` features of the classes (not normalised)."""
        raise NotImplementedError

    def extra_losses(self, towers: ClipTowers, class_texts: Sequence[str],
                     class_feats: Tensor) -> Dict[str, Tensor]:
        """Losses the method adds in training (ViLT's regulariser), given
        the step's normalised class features ``[K, D]``."""
        return {}

    def image_features(self, towers: ClipTowers, frames: Tensor,
                       num_frames: int) -> Tensor:
        """``[N, D]`` features of ``frames [N, 3, H, W]``, ``num_frames``
        consecutive frames per clip (not normalised)."""
        return encode_images(towers, frames)
