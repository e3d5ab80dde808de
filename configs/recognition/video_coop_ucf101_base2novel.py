# Base-to-novel on UCF-101 split 1 (ViFi-CLIP's protocol after CoCoOp):
# train on 16 videos per class of the base half (the first 51 classes of
# classInd.txt), validate on the base half's test videos, test on all 101
# classes' test videos, reporting base and novel top-1 (each half scored
# among its own classes) and their harmonic mean recog/hm.
_base_ = ['./video_coop_ucf101_16shot.py']
train_dataloader = dict(dataset=dict(class_subset='base'))
val_dataloader = dict(dataset=dict(class_subset='base'))
test_evaluator = dict(type='RecognitionMetric', topk=(1, 5),
                      base_novel=True)
K_train = 16
