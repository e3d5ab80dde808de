"""Tiny random CLIP and SigLIP directories in the layout ``save_pretrained``
writes, for the tests of the pretrained encoders.

Each holds ``config.json``, ``model.safetensors``, a BPE tokenizer trained
here with ``tokenizers`` (wrapped as ``PreTrainedTokenizerFast``) and a
``preprocessor_config.json``. Widths: hidden 32, 2 layers, 4 heads, images
32x32 in 8x8 patches (a 4x4 grid); CLIP projects to 24 wide.
"""
import json
import os.path as osp

CORPUS = [
    'a video of a person running', 'a photo of a dog', 'the cat sat on '
    'the mat', 'someone rolls to the left', 'someone rolls to the right',
    'a person jumps over a box', 'two people play tennis outside',
    'cutting vegetables in a kitchen', 'the news anchor speaks',
    'a tutorial about knots'
] * 4
SPECIALS = ['<pad>', '<unk>', '<bos>', '<eos>']  # ids 0..3
VOCAB_SIZE = 120
# CLIP's statistics, written into the directory as a real checkpoint's are.
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]

TOWER = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4)
TEXT = dict(
    TOWER,
    vocab_size=VOCAB_SIZE,
    max_position_embeddings=16,
    pad_token_id=0,
    bos_token_id=2,
    eos_token_id=3)
VISION = dict(TOWER, image_size=32, patch_size=8)


def save_tokenizer(path: str) -> None:
    """A BPE tokenizer that wraps every text as ``<bos> ... <eos>``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from tokenizers import trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE(unk_token='<unk>'))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIALS))
    tok.post_processor = processors.TemplateProcessing(
        single='<bos> $A <eos>',
        special_tokens=[('<bos>', 2), ('<eos>', 3)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token='<pad>',
        unk_token='<unk>',
        bos_token='<bos>',
        eos_token='<eos>')
    assert len(fast) <= VOCAB_SIZE
    fast.save_pretrained(path)


def save_sentencepiece_tokenizer(path: str) -> None:
    """SigLIP's tokenizer as Google ships it: ``spiece.model`` (a unigram
    SentencePiece model, pad 0, end 1) and ``tokenizer_config.json``, no
    ``tokenizer.json``."""
    import os
    import tempfile

    import sentencepiece as spm
    from transformers import SiglipTokenizer
    with tempfile.TemporaryDirectory() as tmp:
        corpus = osp.join(tmp, 'corpus.txt')
        with open(corpus, 'w') as f:
            f.write('\n'.join(CORPUS))
        spm.SentencePieceTrainer.train(
            input=corpus, model_prefix=osp.join(tmp, 'sp'), vocab_size=30,
            model_type='unigram', pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
            pad_piece='<pad>', eos_piece='</s>', unk_piece='<unk>',
            minloglevel=2)
        for name in os.listdir(path):
            if name.startswith(('tokenizer', 'special_tokens')):
                os.remove(osp.join(path, name))
        SiglipTokenizer(vocab_file=osp.join(tmp, 'sp.model')).save_pretrained(
            path)


def save_preprocessor(path: str, family: str) -> None:
    if family == 'clip':
        cfg = dict(
            image_processor_type='CLIPImageProcessor',
            do_resize=True,
            size=dict(shortest_edge=32),
            do_center_crop=True,
            crop_size=dict(height=32, width=32),
            do_rescale=True,
            rescale_factor=1 / 255,
            do_normalize=True,
            image_mean=MEAN,
            image_std=STD)
    else:
        cfg = dict(
            image_processor_type='SiglipImageProcessor',
            do_resize=True,
            size=dict(height=32, width=32),
            do_rescale=True,
            rescale_factor=1 / 255,
            do_normalize=True,
            image_mean=[0.5, 0.5, 0.5],
            image_std=[0.5, 0.5, 0.5])
    with open(osp.join(path, 'preprocessor_config.json'), 'w') as f:
        json.dump(cfg, f, indent=2)


def save_tiny_model(path: str, family: str, seed: int = 0):
    """Save a random tiny ``family`` ('clip' or 'siglip') model and return
    it (in eval mode) for reference outputs."""
    import torch
    from transformers import CLIPConfig, CLIPModel, SiglipConfig, SiglipModel
    torch.manual_seed(seed)
    if family == 'clip':
        # projection_dim in each tower's config too (see PITFALLS.md).
        config = CLIPConfig(
            text_config=dict(TEXT, projection_dim=24),
            vision_config=dict(VISION, projection_dim=24),
            projection_dim=24)
        model = CLIPModel(config)
    else:
        # SigLIP has no projection: both towers' pooled outputs are 32 wide.
        config = SiglipConfig(text_config=TEXT, vision_config=VISION)
        model = SiglipModel(config)
    model.eval()
    model.save_pretrained(path)
    save_tokenizer(path)
    save_preprocessor(path, family)
    return model
