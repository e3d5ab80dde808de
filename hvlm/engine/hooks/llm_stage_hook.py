"""Train the projector into a language model first, then the LM (its LoRA,
or all of it)."""
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from hvlm.registry import HOOKS


@HOOKS.register_module()
class LLMStageHook(Hook):
    """Keep what every LLM head's language model trains frozen for the
    first ``freeze_llm_epochs`` epochs, then train it: the LoRA factors,
    and with ``llm.freeze=False`` every weight of the LM.

    A projector trained from scratch sends noise into the LM at first;
    adapting the LM to that noise would waste its LoRA (or its weights).
    So the projector learns alone first (LLaVA's stage 1), then the LM
    joins it (stage 2), usually with its own learning rate (``llm_lr`` in
    ``configs/llm/``, through ``paramwise_cfg.custom_keys``). The stage is
    read from ``runner.epoch`` before each epoch, so a resumed run is in
    the right stage without saved state.

    The switch changes ``requires_grad``. Under DDP, parameters that do not
    require a gradient when the wrapper is built are never synchronised:
    with several processes, train the two stages as two runs (the second
    with ``freeze_llm_epochs=0`` and ``load_from`` the first).

    Args:
        freeze_llm_epochs (int, optional): Epochs of stage 1; ``None`` takes
            each head's own ``freeze_llm_epochs``.
    """

    priority = 'HIGH'

    def __init__(self, freeze_llm_epochs=None) -> None:
        if freeze_llm_epochs is not None and (
                not isinstance(freeze_llm_epochs, int)
                or freeze_llm_epochs < 0):
            raise ValueError(f'freeze_llm_epochs={freeze_llm_epochs!r} must '
                             'be an integer >= 0')
        self.freeze_llm_epochs = freeze_llm_epochs
        self._state = {}

    def before_train_epoch(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        heads = [(n, m) for n, m in model.named_modules()
                 if callable(getattr(m, 'set_llm_trainable', None))]
        if not heads:
            raise RuntimeError('LLMStageHook: the model has no LLM head '
                               '(a module with set_llm_trainable)')
        for name, head in heads:
            epochs = self.freeze_llm_epochs if self.freeze_llm_epochs \
                is not None else head.freeze_llm_epochs
            train = runner.epoch >= epochs
            if self._state.get(name) != train:
                head.set_llm_trainable(train)
                self._state[name] = train
                state = 'trains' if train else 'frozen (projector only)'
                part = getattr(getattr(head, 'llm', None), 'trained_part',
                               "the LM's LoRA")
                print_log(
                    f'LLMStageHook: epoch {runner.epoch + 1}: '
                    f'{name or type(head).__name__}: {part} {state}',
                    logger='current')
