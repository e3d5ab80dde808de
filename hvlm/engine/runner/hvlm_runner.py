"""mmengine's Runner with what hvlm users need on top."""
import copy
import datetime
import logging
from typing import Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import MMLogger
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

# The families a config names: importing them fills their registries
# (the engine's own registries are filled by importing this package).
import hvlm.datasets  # noqa: F401
import hvlm.evaluation  # noqa: F401
import hvlm.models  # noqa: F401
from hvlm.datasets.worker_tracker import (clear_loading_notes,
                                          explain_worker_death)
from hvlm.engine.hooks.rng_state_hook import gather_rng_states
from hvlm.registry import FUNCTIONS, RUNNERS
from hvlm.utils.atomic_io import (find_resumable_checkpoint,
                                  remove_stale_temp_files)
from hvlm.utils.checkpoint_fit import load_fitting_weights
from hvlm.utils.config import check_config, share_vocabulary
from hvlm.utils.dist import init_cpu_dist

# Hooks every hvlm run gets unless the config already lists them.
DEFAULT_CUSTOM_HOOKS = ('RNGStateHook', 'SkippedVideoHook', 'ProgressBarHook',
                        'NonFiniteLossHook', 'TokenizerHook')

# Multi-line INFO records that mmengine prints at every start; they stay in
# the log file but are kept off the terminal.
_KEY_LIST_PREFIX = 'Checkpoint keys let through by '
_VERBOSE_PREFIXES = (_KEY_LIST_PREFIX,
                     '\n------------------------------------------------'
                     '------------\nSystem environment', 'Config:\n',
                     'Hooks will be executed', 'Distributed training is not',
                     'paramwise_options')


class _TerminalQuietFilter(logging.Filter):

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not message.startswith(_VERBOSE_PREFIXES)


@RUNNERS.register_module()
class HVLMRunner(Runner):
    """The Runner that ``tools/train.py`` and ``tools/test.py`` build.

    On top of mmengine's Runner, before anything is built:

    - the config is checked (:func:`hvlm.utils.config.check_config`):
      misspelled top-level keys are warned about, unknown ``type`` names fail
      with their config key and the closest registered names;
    - val/test datasets share the training split's vocabularies
      (:func:`hvlm.utils.config.share_vocabulary`);
    - several processes without a GPU get a gloo process group and a DDP
      wrapper with ``device_ids=None`` (:mod:`hvlm.utils.dist`);
    - checkpoints are written atomically (``hvlm.utils.atomic_io``), the
      temporary files of writes a killed run left are deleted when training
      starts, and a bare ``--resume`` takes the newest *complete*
      checkpoint, skipping a truncated or corrupt one with a warning;
    - a checkpoint that does not fit the model is refused
      (:meth:`load_checkpoint`), and every rank's RNG state is saved
      (:meth:`save_checkpoint`);
    - a DataLoader worker that dies is reported with the file it was
      loading (:mod:`hvlm.datasets.worker_tracker`);
    - ``RNGStateHook``, ``SkippedVideoHook``, ``ProgressBarHook``,
      ``NonFiniteLossHook`` and ``TokenizerHook`` (a no-op for models
      without text heads) are added (list one in ``custom_hooks`` to set
      its arguments, e.g. ``dict(type='NonFiniteLossHook', policy='stop')``);
      and the environment/config/hook dumps stay in the log file
      instead of filling the terminal.

    Select it with ``runner_type = 'HVLMRunner'`` (set in
    ``configs/_base_/default_runtime.py``).
    """

    @classmethod
    def from_cfg(cls, cfg: Union[Config, ConfigDict]) -> 'HVLMRunner':
        cfg = copy.deepcopy(cfg)
        check_config(cfg)
        share_vocabulary(cfg)

        launcher = cfg.get('launcher', 'none')
        dist_cfg = (cfg.get('env_cfg') or {}).get('dist_cfg') or {}
        timeout = dist_cfg.get('timeout')
        if init_cpu_dist(
                launcher,
                datetime.timedelta(seconds=timeout) if timeout else None):
            wrapper = dict(cfg.get('model_wrapper_cfg') or {})
            wrapper.setdefault('type', 'MMDistributedDataParallel')
            wrapper['device_ids'] = None
            cfg.model_wrapper_cfg = wrapper

        custom_hooks = list(cfg.get('custom_hooks') or [])
        present = {hook.get('type') for hook in custom_hooks}
        custom_hooks += [
            dict(type=name) for name in DEFAULT_CUSTOM_HOOKS
            if name not in present
        ]
        cfg.custom_hooks = custom_hooks
        return super().from_cfg(cfg)

    def _run_naming_dead_workers(self, run):
        try:
            return run()
        except RuntimeError as err:
            explanation = explain_worker_death(err)
            if explanation is None:
                raise
            raise RuntimeError(f'{err}\n{explanation}') from err
        finally:
            clear_loading_notes()

    def train(self):
        """Train; a DataLoader worker that dies is named with its file.

        First (rank 0) the temporary files of checkpoint writes that a
        killed run left in the work dir are deleted
        (:func:`hvlm.utils.atomic_io.remove_stale_temp_files`).
        """
        if self.rank == 0:
            remove_stale_temp_files(self.work_dir, self.logger.info)
        return self._run_naming_dead_workers(super().train)

    def test(self):
        """Test; a DataLoader worker that dies is named with its file."""
        return self._run_naming_dead_workers(super().test)

    def load_or_resume(self) -> None:
        if not self._has_loaded and self._resume and self._load_from is None:
            found, _ = find_resumable_checkpoint(self.work_dir,
                                                 self.logger.warning)
            if found is None:
                self.logger.info(
                    f'--resume: no complete checkpoint in {self.work_dir}; '
                    'starting from scratch.')
                self._resume = False
            else:
                self.logger.info(f'--resume: resuming from {found}.')
                self._load_from = found
        super().load_or_resume()

    def save_checkpoint(self, *args, **kwargs) -> None:
        """Save a checkpoint; every rank calls this, rank 0 writes.

        mmengine's ``save_checkpoint`` returns at once on the other ranks,
        and the hooks' ``before_save_checkpoint`` runs on rank 0 alone, so
        every rank's RNG state is gathered here first (a collective) and
        ``RNGStateHook`` stores it from ``rng_states_by_rank``. mmengine's
        ``CheckpointHook`` calls it on every rank; code that saves from
        rank 0 alone would wait here for the others.
        """
        self.rng_states_by_rank = (
            gather_rng_states() if self.world_size > 1 else None)
        try:
            super().save_checkpoint(*args, **kwargs)
        finally:
            self.rng_states_by_rank = None

    def load_checkpoint(self,
                        filename: str,
                        map_location='cpu',
                        strict: bool = False,
                        revise_keys=((r'^module\.', ''), )) -> dict:
        """Load the weights of ``filename`` if they fit the model.

        mmengine loads non-strictly and only logs what did not fit; here a
        checkpoint with a tensor of another shape, a missing key or an
        unexpected one is refused before anything is loaded
        (:func:`hvlm.utils.checkpoint_fit.load_fitting_weights`), for
        ``load_from``, ``tools/test.py`` and ``--resume`` alike. For
        ``load_from`` (not a resume) the config may let keys through:
        ``load_from_allow_missing`` / ``load_from_allow_unexpected``, lists
        of regular expressions searched in the key names, and
        ``load_from_allow_shape_mismatch`` (keys whose tensors may differ in
        shape, e.g. class heads on another data set: they keep their
        initial values, and the log names each with both shapes). A resume
        takes the checkpoint of this same run, which has every key.
        """
        checkpoint = CheckpointLoader.load_checkpoint(
            filename, map_location=map_location, logger='current')
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(
            self.model) else self.model
        if isinstance(model, BaseTTAModel):  # tools/test.py --tta
            model = model.module
        lenient = not (strict or self._resume)
        config = getattr(self.cfg, 'filename', None)
        mismatch = load_fitting_weights(
            model,
            checkpoint,
            filename,
            allow_missing=(self.cfg.get('load_from_allow_missing') or ()
                           if lenient else ()),
            allow_unexpected=(self.cfg.get('load_from_allow_unexpected')
                              or () if lenient else ()),
            revise_keys=revise_keys,
            what=f'the model of config {config}' if config else 'the model',
            allow_shape=(self.cfg.get('load_from_allow_shape_mismatch')
                         or () if lenient else ()))
        if mismatch.allowed_shapes:
            self.logger.info(
                f'{filename}: {len(mismatch.allowed_shapes)} tensors of '
                'another shape re-initialised (not loaded), as '
                'load_from_allow_shape_mismatch allows: ' + ', '.join(
                    f'{k} checkpoint {list(c)} -> model {list(m)}'
                    for k, c, m in mismatch.allowed_shapes))
        for keys, where, option in (
                (mismatch.allowed_missing, 'in the model are not in the '
                 'checkpoint and keep their initial values',
                 'load_from_allow_missing'),
                (mismatch.allowed_unexpected, 'in the checkpoint are not in '
                 'the model and were ignored', 'load_from_allow_unexpected')):
            if keys:
                shown = ', '.join(keys[:3])
                self.logger.info(
                    f'{filename}: {len(keys)} keys {where}, as {option} '
                    f'allows (e.g. {shown}); the log file lists them all.')
                # the whole list goes to the log file only (see
                # _TerminalQuietFilter): thousands of names on a big model
                self.logger.info(f'{_KEY_LIST_PREFIX}{option}:\n' +
                                 '\n'.join(keys))
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    @staticmethod
    def build_dataloader(dataloader, seed=None, diff_rank_seed=False):
        """Build a DataLoader, finding ``collate_fn`` / ``worker_init_fn``
        types in hvlm's ``FUNCTIONS`` (mmengine looks only in its root
        registry, where hvlm's functions are not).

        Each loader also gets its own seeded ``torch.Generator``: starting
        worker processes otherwise draws their base seed from torch's global
        generator, which shifts every later dropout mask, and a resumed run
        starts its workers at another point than the uninterrupted run.
        """
        if isinstance(dataloader, dict):
            dataloader = copy.copy(dataloader)
            dataloader.setdefault(
                'generator',
                torch.Generator().manual_seed(0 if seed is None else seed))
            for key in ('collate_fn', 'worker_init_fn'):
                fn_cfg = dataloader.get(key)
                if isinstance(fn_cfg, dict) and isinstance(
                        fn_cfg.get('type'), str):
                    fn = FUNCTIONS.get(fn_cfg['type'])
                    if fn is not None:
                        dataloader[key] = dict(fn_cfg, type=fn)
        return Runner.build_dataloader(dataloader, seed, diff_rank_seed)

    def build_logger(self, *args, **kwargs) -> MMLogger:
        logger = super().build_logger(*args, **kwargs)
        for handler in logger.handlers:
            if (isinstance(handler, logging.StreamHandler)
                    and not isinstance(handler, logging.FileHandler)
                    and not any(isinstance(f, _TerminalQuietFilter)
                                for f in handler.filters)):
                handler.addFilter(_TerminalQuietFilter())
        return logger

    def _log_env(self, env_cfg: dict) -> None:
        super()._log_env(env_cfg)
        device = (torch.cuda.get_device_name()
                  if torch.cuda.is_available() else 'cpu')
        self.logger.info(
            f'hvlm run "{self.experiment_name}": torch {torch.__version__} on '
            f'{device}, world size {self.world_size}, seed {self.seed}, '
            f'launcher {self.launcher}; the full config is in '
            f'{self.work_dir}.')
