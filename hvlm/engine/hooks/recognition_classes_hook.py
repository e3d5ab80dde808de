"""Give a recognizer the class set of the loop that is about to run."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from hvlm.registry import HOOKS


@HOOKS.register_module()
class RecognitionClassesHook(Hook):
    """Before training, validation and test, hand the model the
    ``class_texts`` of that loop's dataset (``set_class_texts``), and give
    the training set's back after validation.

    The class set thus always matches the labels of the data being run:
    a base-to-novel run trains on the base half and tests each half with
    its own classes, and a checkpoint can be tested on another dataset.
    """

    priority = 'VERY_HIGH'

    @staticmethod
    def _apply(runner, loader) -> None:
        dataset = getattr(loader, 'dataset', None)
        texts = (getattr(dataset, 'metainfo', None) or {}).get('class_texts')
        if texts is None:
            raise ValueError(
                f'RecognitionClassesHook: {type(dataset).__name__} has no '
                'metainfo["class_texts"]; use a recognition dataset '
                '(UCF101Dataset, HMDB51Dataset, KineticsDataset, ...)')
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        model.set_class_texts(texts)

    def before_train(self, runner) -> None:
        self._apply(runner, runner.train_dataloader)

    def before_val_epoch(self, runner) -> None:
        self._apply(runner, runner.val_dataloader)

    def after_val_epoch(self, runner, metrics=None) -> None:
        loop = getattr(runner, '_train_loop', None)
        if loop is not None and not isinstance(loop, dict):  # training
            self._apply(runner, runner.train_dataloader)

    def before_test_epoch(self, runner) -> None:
        self._apply(runner, runner.test_dataloader)
