_base_ = ['./video_coop_ucf101_16shot.py']
K_train = 4
