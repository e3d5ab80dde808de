"""Keep parts of the model frozen for the first epochs of training."""
from typing import Dict, Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from hvlm.registry import HOOKS


@HOOKS.register_module()
class FreezeModulesHook(Hook):
    """Freeze the submodules named in ``modules`` (paths such as
    ``'backbone'`` or ``'head.heads.language.projector'``) for the first
    ``epochs`` epochs, then give them back their own ``requires_grad``
    (a parameter that the config froze stays frozen).

    LLaVA's first stage trains the projector between a frozen vision
    encoder and a frozen LM; with the LM frozen by ``LLMStageHook``, this
    freezes the encoder too (``modules=['backbone']``). The usual use
    elsewhere: a pretrained backbone kept still while new heads warm up.

    The stage is read from ``runner.epoch`` before each epoch, so a resumed
    run is in the right stage. The switch changes ``requires_grad``, which
    DDP reads once when it wraps the model: with several processes, train
    the stages as separate runs (``load_from`` the first), as for
    ``LLMStageHook``.

    Args:
        modules (Sequence[str]): Submodule paths in the model (unwrapped).
        epochs (int): How many epochs they stay frozen.
    """

    priority = 'HIGH'

    def __init__(self, modules: Sequence[str], epochs: int) -> None:
        modules = (modules, ) if isinstance(modules, str) else tuple(modules)
        if not modules or not all(isinstance(m, str) and m for m in modules):
            raise ValueError(f'modules={modules!r} must name submodules, '
                             "e.g. ('backbone', )")
        if not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f'epochs={epochs!r} must be an integer >= 0')
        self.modules = modules
        self.epochs = epochs
        self._trainable: Dict[str, Dict[str, bool]] = {}
        self._frozen = None

    def before_train_epoch(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not self._trainable:
            for path in self.modules:
                try:
                    module = model.get_submodule(path)
                except AttributeError as err:
                    names = [n for n, _ in model.named_children()]
                    raise KeyError(
                        f'FreezeModulesHook: the model has no submodule '
                        f'{path!r} ({err}); its top-level modules are '
                        f'{names}') from None
                self._trainable[path] = {
                    n: p.requires_grad
                    for n, p in module.named_parameters()
                }
        frozen = runner.epoch < self.epochs
        if frozen == self._frozen:
            return
        for path, trainable in self._trainable.items():
            for name, param in model.get_submodule(path).named_parameters():
                param.requires_grad_(trainable[name] and not frozen)
                if frozen:
                    param.grad = None
        self._frozen = frozen
        state = (f'frozen until epoch {self.epochs}'
                 if frozen else 'train')
        print_log(f'FreezeModulesHook: epoch {runner.epoch + 1}: '
                  f'{", ".join(self.modules)} {state}', logger='current')
