# CLIPRecognizer on a local CLIP directory (no download): set it with
#   --cfg-options model.pretrained=/data/clip-vit-base-patch16
# Frames are normalised with the directory's preprocessor_config.json.
model = dict(
    type='CLIPRecognizer',
    pretrained=None,
    temporal_pooling='mean',
    data_preprocessor=dict(type='RecognitionDataPreprocessor'),
    # 8 frames x 4 views of ViT-B/16 per pass bound activation memory
    frames_per_pass=32)
