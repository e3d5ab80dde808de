"""Write the trained model as a Hugging Face directory when training ends."""
import os.path as osp
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from hvlm.registry import HOOKS


@HOOKS.register_module()
class ExportPretrainedHook(Hook):
    """After training, rank 0 calls the model's ``save_pretrained`` into
    ``out_dir`` (relative paths under the work dir), replacing the export
    of an earlier run there (a directory holding anything else is refused,
    never deleted).

    The weights exported are the model's at the end of training; export
    another checkpoint with ``tools/misc/export_pretrained.py``.

    Args:
        out_dir (str): Directory to write; default ``<work_dir>/hf_export``.
    """
    priority = 'VERY_LOW'

    def __init__(self, out_dir: Optional[str] = None) -> None:
        self.out_dir = out_dir

    def after_train(self, runner) -> None:
        if runner.rank != 0:
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'save_pretrained'):
            raise TypeError(
                f'ExportPretrainedHook: {type(model).__name__} has no '
                'save_pretrained(); remove the hook from custom_hooks')
        out = self.out_dir or 'hf_export'
        if not osp.isabs(out):
            out = osp.join(runner.work_dir, out)
        path = model.save_pretrained(out, overwrite=True)
        print_log(
            f'ExportPretrainedHook: wrote the model as a Hugging Face '
            f'directory: {path}',
            logger='current')
