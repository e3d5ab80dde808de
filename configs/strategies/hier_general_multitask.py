# Multi-task learning with explicit task weights: the total loss is
# sum over tasks of weight * (that head's losses). Detection counts double
# here; the defaults are the original's 0.33 / 0.33 / 0.34. Weights need not
# sum to 1 (their sum scales the gradient, like the learning rate); a
# weight of 0 trains that head not at all.
_base_ = ['../hier_general.py']

model = dict(
    head=dict(
        task_weights=dict(
            action_detection=0.5, video_qa=0.25, video_captioning=0.25)))
