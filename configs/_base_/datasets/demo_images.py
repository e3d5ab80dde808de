# The demo image set: six shape x texture classes, PNGs generated on first
# use (about a second) under data/hvit_demo_images, then reused. Point
# data_root elsewhere (<split>/<class>/<image>) to train on your images;
# `demo` is then ignored.
dataset_type = 'ImageFolderDataset'
demo_root = 'data/hvit_demo_images'
demo = dict(
    root=demo_root,
    seed=0,
    images_per_class=dict(training=100, validation=30, test=30),
    size=64)
img_size = 64

# Crops, flips, colour and mixing run per sample in the data preprocessor
# (batch augments), so the pipeline only reads and resizes.
pipeline = [
    dict(type='LoadImageFile'),
    dict(type='ResizeImage', scale=img_size),
    dict(type='PackImageInputs'),
]
