"""A small causal LM trained here on a dataset's own text, for the LLM
configs to run where no pretrained weights can be downloaded.

It is a LLaMA-architecture model with a byte-level BPE tokenizer, saved
with ``save_pretrained`` like any Hugging Face checkpoint, so
:class:`~hvlm.models.language.HFCausalLM` loads it by the same path as a
real 0.5-1.5B model. It only knows the demo's language (questions,
answers, captions); the video is what the LLM head must add.
"""
import math
import os
from typing import Dict, Iterable, List, Sequence

import torch

from ..layers.hf_local import import_transformers, quiet_transformers

EOS = '<|endoftext|>'
PAD = '<pad>'


def dataset_texts(dataset, qa_prompt: str, caption_prompt: str,
                  answer_prefix: str = ' ',
                  context: bool = False) -> List[str]:
    """Every question with its answer and every caption of ``dataset``'s
    data list (``qa_pairs``, ``captions``), written with the LLM head's
    prompts, so that the LM knows the format it will be asked in.

    With ``context=True`` each of these texts is given a second time after
    a description of its video in words: a question after all the
    video's captions in time order, a caption after its own text. An LM
    trained on the first kind only has never needed to read anything
    before the prompt, and answers from the question alone (the video
    prefix is ignored); with the second it learns to read what precedes
    the prompt, which is what the projected video tokens stand for (a
    pretrained LM brings this from its own training)."""
    dataset.full_init()
    texts = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        captions = []
        for c in info.get('captions', ()):
            start, end = (c['time'] if 'time' in c else
                          (c['start'], c['end']))
            captions.append((float(start), float(end), c['text']))
        described = ' '.join(c[2] for c in sorted(captions,
                                                  key=lambda c: c[:2]))
        for qa in info.get('qa_pairs', ()):
            text = (qa_prompt.format(question=qa['question']) +
                    answer_prefix + qa['answer'])
            texts.append(text)
            if context and described:
                texts.append(f'{described} {text}')
        for start, end, caption in captions:
            text = (caption_prompt.format(start=start, end=end) +
                    answer_prefix + caption)
            texts.append(text)
            if context:
                texts.append(f'{caption} {text}')
    if not texts:
        raise ValueError('the dataset has no question and no caption to '
                         'train a language model on')
    return texts


def scene_graph_texts(dataset) -> List[str]:
    """One sentence per annotated frame of a scene-graph data set
    (``ActionGenomeDataset``'s data list and ``metainfo``): its triplets in
    the evaluator's order, ``'person looking_at cup . cup in_front_of
    person . person holding cup'`` (spatial predicates read object to
    person, as Action Genome's), the frame's objects joined by ``' ; '``.
    The language SceneLLM's LM knows before it reads scene tokens."""
    dataset.full_init()
    classes = dataset.metainfo['classes']
    predicates = dataset.metainfo['predicates']  # 3 + 6 + 17, AG's order
    texts = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        frames = {}
        for k, f in enumerate(info['obj_frames']):
            obj = classes[int(info['obj_labels'][k])]
            words = [f'person {predicates[int(info["attention"][k])]} {obj}']
            words += [f'{obj} {predicates[3 + j]} person'
                      for j in range(6) if info['spatial'][k][j]]
            words += [f'person {predicates[9 + j]} {obj}'
                      for j in range(17) if info['contacting'][k][j]]
            frames.setdefault(int(f), []).append(' . '.join(words))
        texts += [' ; '.join(objs) for _, objs in sorted(frames.items())]
    if not texts:
        raise ValueError('the scene-graph dataset has no annotated frame '
                         'to train a language model on')
    return texts


def train_tokenizer(texts: Sequence[str], vocab_size: int):
    """Byte-level BPE (as GPT-2, LLaMA 3 and Qwen2 use) with an end and a
    pad token, as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers import trainers
    transformers = import_transformers()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=[EOS, PAD],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=PAD)


def packed_row(texts: Sequence[List[int]], length: int,
               generator: torch.Generator) -> List[int]:
    """``length`` token ids: texts (token ids, each ending with the end
    token) drawn at random and joined one after another, the last one cut
    (a pretraining row of packed documents)."""
    if length < 1 or not texts:
        raise ValueError(f'length={length} must be positive and texts '
                         'non-empty')
    row = []
    while len(row) < length:
        row += texts[int(torch.randint(len(texts), (1, ),
                                       generator=generator))]
    return row[:length]


def train_demo_lm(texts: Sequence[str],
                  out_dir: str,
                  vocab_size: int = 512,
                  hidden_size: int = 128,
                  num_layers: int = 2,
                  num_heads: int = 4,
                  context: int = 512,
                  steps: int = 300,
                  batch_size: int = 32,
                  lr: float = 3e-3,
                  seed: int = 0,
                  pack: int = 0,
                  log: Iterable = None) -> Dict[str, float]:
    """Train a LLaMA-style LM on ``texts`` (each ended by the end token) and
    save it with its tokenizer into ``out_dir``.

    Each batch row is one text, or with ``pack > 0`` texts drawn at random
    and joined (each after the previous one's end token) into rows of
    ``pack`` tokens, as LMs are pretrained on packed documents (GPT-2,
    LLaMA): the positions and distances the LM learns to attend over then
    reach ``pack``. Unpacked, they reach only the longest text (about 55
    tokens on the demo), while the LLM head puts its video tokens before
    the prompt: 128 of them, so the prompt reads them from distances the
    LM never saw. (Measured on the demo: the LLM head answered worse
    behind a packed demo LM, docs/LANGUAGE_MODELS.md.)

    Returns:
        dict: ``first_loss`` and ``last_loss`` (mean next-token
        cross-entropy of the first and the last 10 steps), ``params``.
    """
    transformers = import_transformers()
    torch.manual_seed(seed)
    tokenizer = train_tokenizer(texts, vocab_size)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size,
        intermediate_size=hidden_size * 2, num_hidden_layers=num_layers,
        num_attention_heads=num_heads, num_key_value_heads=num_heads,
        max_position_embeddings=context, tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    with quiet_transformers():
        model = transformers.LlamaForCausalLM(config)
    ids = [tokenizer(t)['input_ids'] + [tokenizer.eos_token_id]
           for t in texts]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr,
                                  weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    if pack < 0 or pack > context:
        raise ValueError(f'pack={pack} must be in [0, context={context}]')
    g = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for step in range(steps):
        if pack:
            batch = [packed_row(ids, pack, g) for _ in range(batch_size)]
        else:
            batch = [ids[i] for i in torch.randint(
                len(ids), (batch_size, ), generator=g).tolist()]
        L = min(max(map(len, batch)), context)
        x = torch.full((batch_size, L), tokenizer.pad_token_id)
        labels = torch.full((batch_size, L), -100)
        for r, row in enumerate(batch):
            row = row[:L]
            x[r, :len(row)] = torch.tensor(row)
            labels[r, :len(row)] = torch.tensor(row)
        loss = model(input_ids=x, attention_mask=(labels != -100).long(),
                     labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if log is not None and (step % 50 == 0 or step == steps - 1):
            log(f'step {step + 1}/{steps}: loss {loss.item():.3f}')
    os.makedirs(out_dir, exist_ok=True)
    model.eval()
    with quiet_transformers():
        model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return dict(first_loss=sum(losses[:10]) / len(losses[:10]),
                last_loss=sum(losses[-10:]) / len(losses[-10:]),
                params=float(sum(p.numel() for p in model.parameters())))
