"""Tiny random causal LMs (LLaMA, Qwen2, GPT-2) in the layout
``save_pretrained`` writes, for the tests of the language-model wrapper and
the LLM head.

Each directory holds ``config.json``, ``model.safetensors`` and a byte-level
BPE tokenizer trained here with ``tokenizers`` (as GPT-2, LLaMA 3 and Qwen2
ship theirs), wrapped as ``PreTrainedTokenizerFast``. Widths: hidden 32,
2 layers, 4 heads (LLaMA: 2 key/value heads), context 64.
"""
CORPUS = [
    'question: what does the person do? answer: rolls to the left',
    'question: what does the person do? answer: rolls to the right',
    'question: what happens first? answer: a ball bounces',
    'caption: a person jumps over a box', 'caption: two people play tennis',
    'caption: cutting vegetables in a kitchen', 'the news anchor speaks',
    'a tutorial about knots'
] * 4
VOCAB_SIZE = 300
CONTEXT = 64
FAMILIES = ('llama', 'qwen2', 'gpt2')


def save_tokenizer(path: str, pad: bool = True) -> None:
    """Byte-level BPE; ``<|endoftext|>`` ends a text; ``<pad>`` only when
    ``pad`` (GPT-2's tokenizer has none)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers import trainers
    from transformers import PreTrainedTokenizerFast
    specials = ['<|endoftext|>'] + (['<pad>'] if pad else [])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(
            vocab_size=VOCAB_SIZE, special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token='<|endoftext|>',
        bos_token='<|endoftext|>', pad_token='<pad>' if pad else None)
    assert len(fast) <= VOCAB_SIZE
    fast.save_pretrained(path)


def tiny_config(family: str):
    import transformers
    common = dict(vocab_size=VOCAB_SIZE, eos_token_id=0, bos_token_id=0)
    if family == 'gpt2':
        return transformers.GPT2Config(
            n_embd=32, n_layer=2, n_head=4, n_positions=CONTEXT,
            resid_pdrop=0., embd_pdrop=0., attn_pdrop=0., **common)
    cls = dict(llama=transformers.LlamaConfig,
               qwen2=transformers.Qwen2Config)[family]
    return cls(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4,
               num_key_value_heads=2 if family == 'llama' else 4,
               max_position_embeddings=CONTEXT, tie_word_embeddings=False,
               **common)


def save_tiny_lm(path: str, family: str, seed: int = 0, pad: bool = None):
    """Save a random tiny ``family`` LM with its tokenizer and return the
    model (eval mode) for reference outputs. ``pad`` defaults to False for
    GPT-2 (as released) and True otherwise."""
    import torch
    from transformers import AutoModelForCausalLM
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(family))
    with torch.no_grad():  # larger weights: peaked, less tie-prone logits
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.2)
    model.eval()
    model.save_pretrained(path)
    save_tokenizer(path, pad=family != 'gpt2' if pad is None else pad)
    return model
