# The options of the original prompt-tuning scripts, same names and
# meanings; hvlm.utils.recognition_options writes them into the config
# after --cfg-options, so `--cfg-options K_train=4` acts everywhere.
batch_size = 4
num_workers = 4
batches_per_backprop = 8  # gradient accumulation: one step per 8 batches
K_train = 16  # videos per class for training (None: all)
K_val = 4  # videos per class for validation (None: all)
few_shot_seed = 0  # the K-shot draw; the protocol averages 3 seeds
temporal_pooling = 'attention'  # 'mean', 'max' or 'attention'
num_temporal_views = 1  # temporal clips per video (test: 'prob' average)
ctx_len = None  # learned context tokens (None: the learner's own)
videomix_type = None  # None, 'spatial' or 'temporal'
use_augmentation = False  # multi-scale crop + flip in training
use_handcrafted_features = None  # ViDOP: template text features
continue_from = None  # a checkpoint whose weights to start from
early_stopping = 5  # validations without a better recog/top1 (None: off)
