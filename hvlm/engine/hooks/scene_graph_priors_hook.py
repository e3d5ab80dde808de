"""Count STKET's priors on the training split before training."""
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from hvlm.datasets.scene_graph_priors import count_scene_priors
from hvlm.registry import HOOKS


@HOOKS.register_module()
class SceneGraphPriorsHook(Hook):
    """Before training, count the predicate co-occurrence and transition
    priors on the training dataset's annotations (data infos only, no frame
    is read) and hand them to the model (``set_priors``).

    Counted afresh at every run, so a model loaded from a checkpoint trained
    elsewhere (progressive training, fine-tuning on another data set) gets
    the priors of the split it now trains on; the model keeps them in its
    buffers, so validation, test and a saved checkpoint use exactly these.
    Only the training split is read: test annotations never reach a prior.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'set_priors'):
            raise TypeError(
                f'SceneGraphPriorsHook: {type(model).__name__} has no '
                'set_priors(); the hook is for STKET')
        dataset = runner.train_dataloader.dataset
        infos = [dataset.get_data_info(i) for i in range(len(dataset))]
        counts = count_scene_priors(infos, model.num_classes)
        model.set_priors(counts)
        print_log(
            f'SceneGraphPriorsHook: priors counted on {len(infos)} training '
            f'videos ({int(counts["objects"].sum())} objects, '
            f'{int(counts["transition_from"].sum())} predicate transitions)',
            logger='current')
