"""mmengine's LoggerHook with one x axis per logged scalar name."""
from typing import Dict, Optional

from mmengine.hooks import LoggerHook

from hvlm.registry import HOOKS


def phase_scalar_names(tag: Dict[str, object], metrics: Optional[dict],
                       phase: str) -> Dict[str, object]:
    """``tag`` with every key that is not one of ``metrics`` prefixed by
    ``phase + '/'``.

    mmengine strips the phase from the names it logs, so the validation
    epoch's mean ``time`` and ``data_time`` (and hvlm's
    ``skipped_videos``) share their names with the training iterations'
    and land in the same TensorBoard series, plotted against iterations by
    the training lines and against epochs by the validation lines. The
    evaluator's metrics have no training twin and keep their names.

    Example:
        ``{'action/frame_top1': 0.5, 'time': 0.2}`` with metrics
        ``{'action/frame_top1': 0.5}`` and phase ``'val'`` ->
        ``{'action/frame_top1': 0.5, 'val/time': 0.2}``.
    """
    metrics = metrics or {}
    prefix = f'{phase}/'
    return {
        key if key in metrics or key.startswith(prefix) else prefix + key:
        value
        for key, value in tag.items()
    }


@HOOKS.register_module()
class PhaseLoggerHook(LoggerHook):
    """A ``LoggerHook`` whose validation scalars do not reuse training
    scalars' names (see :func:`phase_scalar_names`).

    Training lines are logged as mmengine logs them, at ``step`` = the
    iteration; validation lines at ``step`` = the epoch (or the iteration
    when ``log_metric_by_epoch=False``), their metrics under the
    evaluator's names and everything else as ``val/<name>``
    (``val/time``, ``val/data_time``, ``val/skipped_videos``). Each name in
    ``scalars.json`` and TensorBoard then has one kind of x axis, in every
    run, with or without validation. The terminal lines are unchanged.
    Arguments are ``LoggerHook``'s.
    """

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        tag, log_str = runner.log_processor.get_log_after_epoch(
            runner, len(runner.val_dataloader), 'val')
        runner.logger.info(log_str)
        # Reading runner.epoch or runner.iter builds the train loop; a
        # validation-only run (runner.val()) has none and logs at step 0.
        train_loop = runner._train_loop
        if isinstance(train_loop, dict) or train_loop is None:
            step = 0
        else:
            step = runner.epoch if self.log_metric_by_epoch else runner.iter
        runner.visualizer.add_scalars(
            phase_scalar_names(tag, metrics, 'val'),
            step=step,
            file_path=self.json_log_path)
