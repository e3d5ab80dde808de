# The demo image set: six shape classes (colour, background, size, position
# and rotation are nuisances), 32 px PNGs generated on first use (a few
# seconds) under data/hvit_demo_images, then reused. Point
# data_root elsewhere (<split>/<class>/<image>) to train on your images;
# `demo` is then ignored.
dataset_type = 'ImageFolderDataset'
demo_root = 'data/hvit_demo_images'
# one folder per split; a config refers to these as {{_base_.train_root}}
# ({{_base_.demo_root}} + '/training' would join mmengine's placeholder
# name, not the path)
train_root = demo_root + '/training'
val_root = demo_root + '/validation'
test_root = demo_root + '/test'
demo = dict(
    root=demo_root,
    seed=0,
    images_per_class=dict(training=500, validation=50, test=100),
    size=32)
img_size = 32

# Crops, flips, colour and mixing run per sample in the data preprocessor
# (batch augments), so the pipeline only reads and resizes.
pipeline = [
    dict(type='LoadImageFile'),
    dict(type='ResizeImage', scale=img_size),
    dict(type='PackImageInputs'),
]
