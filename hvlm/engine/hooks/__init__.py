from .curriculum_hook import CurriculumHook, EpochStageHook
from .export_pretrained_hook import ExportPretrainedHook
from .freeze_modules_hook import FreezeModulesHook
from .llm_stage_hook import LLMStageHook
from .nonfinite_loss_hook import NonFiniteLossHook
from .phase_logger_hook import PhaseLoggerHook, phase_scalar_names
from .progress_bar_hook import ProgressBarHook
from .progressive_merging_hook import ProgressiveMergingHook
from .resource_monitor_hook import ResourceMonitorHook, process_tree_usage
from .recognition_classes_hook import RecognitionClassesHook
from .scene_graph_priors_hook import SceneGraphPriorsHook
from .rng_state_hook import RNGStateHook, get_rng_state, set_rng_state
from .skipped_video_hook import SkippedVideoHook
from .tokenizer_hook import TokenizerHook, annotation_texts

__all__ = [
    'CurriculumHook', 'EpochStageHook', 'ExportPretrainedHook',
    'FreezeModulesHook',
    'LLMStageHook', 'NonFiniteLossHook',
    'PhaseLoggerHook', 'phase_scalar_names',
    'ProgressiveMergingHook', 'ProgressBarHook', 'ResourceMonitorHook',
    'process_tree_usage', 'RNGStateHook', 'RecognitionClassesHook',
    'SkippedVideoHook', 'TokenizerHook', 'annotation_texts', 'get_rng_state',
    'set_rng_state', 'SceneGraphPriorsHook'
]
