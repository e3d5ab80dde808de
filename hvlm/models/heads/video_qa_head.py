"""Answer questions about a video by classifying over an answer set."""
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import HEADS
from hvlm.structures import SampleList
from hvlm.structures import VideoFeatures
from ..text import QuestionVideoEncoder, TokenizerStateMixin
from .base_head import BaseHead, global_mean
from .video_memory import time_features, video_memory


def _questions(sample) -> List[str]:
    """The questions to answer: ``sample.questions`` if set (inference on
    new questions), else those of ``gt_qa``."""
    if 'questions' in sample:
        return list(sample.questions)
    return [qa['question'] for qa in sample.get('gt_qa', [])]


@HEADS.register_module()
class VideoQAHead(TokenizerStateMixin, BaseHead):
    """Open-ended video QA as classification over the training answers
    (the formulation of e.g. Xu et al. 2017, "Video Question Answering via
    Gradually Refined Attention", and of TGIF-QA's open-ended tasks).

    The tokenised question is encoded by a small transformer whose layers
    cross-attend to all of the video's tokens (every clip), with
    ``log(size)`` as the proportional-attention bias of merged tokens
    (:func:`video_memory`); the mean of the question positions then goes to
    a linear classifier over ``num_answers`` answers.

    Each video token gets an embedding of *when* it happens, its place in
    the sampled video (:func:`time_features`). The backbone encodes clips
    one by one, so without it the tokens of the first and the last clip
    look alike to the question, and "what happens first / at the end"
    cannot be told apart.

    Answer ids are the dataset's ``answers`` vocabulary
    (``gt_qa[i]['answer_id']``); the word ids come from the
    :class:`WordTokenizer` (set by ``TokenizerHook`` and saved in the state
    dict).

    Loss: cross-entropy averaged over every question with a known answer in
    the batch, all ranks together (:func:`global_mean`; answers outside the
    vocabulary, id ``-1``, are skipped); a batch without one gives 0, still
    connected to the graph.

    ``predict`` writes ``pred_qa``: one ``dict(question, answer_id, score)``
    per question of ``sample.questions`` or else of ``gt_qa``.

    Args:
        in_channels (int): Width of the video tokens.
        num_answers (int): Classifier capacity (the original: 1000).
        vocab_size (int): Word-embedding capacity (the original: 10000).
        embed_dims (int): Width of the question encoder; the video tokens
            are projected to it.
        num_layers (int): Question-encoder layers.
        num_heads (int): Attention heads.
        max_question_len (int): Longest question in tokens; longer ones
            are cut.
        dropout (float): Dropout in the encoder and before the classifier.
        loss_weight (float): Multiplier of the loss.
        label_smoothing (float): Cross-entropy label smoothing.
        time_freqs (int): Frequencies of the time embedding of the video
            tokens; 0 turns it off.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 num_answers: int = 1000,
                 vocab_size: int = 10000,
                 embed_dims: int = 128,
                 num_layers: int = 2,
                 num_heads: int = 4,
                 max_question_len: int = 32,
                 dropout: float = 0.1,
                 loss_weight: float = 1.0,
                 label_smoothing: float = 0.,
                 time_freqs: int = 4,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels),
                            ('num_answers', num_answers),
                            ('vocab_size', vocab_size),
                            ('embed_dims', embed_dims)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f'{name}={value!r} must be a positive '
                                 'integer')
        if not isinstance(time_freqs, int) or time_freqs < 0:
            raise ValueError(f'time_freqs={time_freqs!r} must be an integer '
                             '>= 0')
        self.in_channels = in_channels
        self.num_answers = num_answers
        self.vocab_size = vocab_size
        self.max_question_len = max_question_len
        self.loss_weight = loss_weight
        self.label_smoothing = label_smoothing
        self.time_freqs = time_freqs
        self.video_proj = nn.Linear(in_channels, embed_dims)
        self.time_embed = nn.Linear(2 * time_freqs, embed_dims) \
            if time_freqs else None
        self.encoder = QuestionVideoEncoder(
            vocab_size, embed_dims, num_layers, num_heads, max_question_len,
            dropout)
        self.dropout = nn.Dropout(dropout)
        self.fc_answer = nn.Linear(embed_dims, num_answers)

    def _logits(self, feats: VideoFeatures, video_of_question: Tensor,
                questions: List[str]) -> Tensor:
        """``[Q, num_answers]`` for ``questions`` about the videos
        ``video_of_question [Q]``."""
        tokenizer = self.require_tokenizer()
        memory, bias = self._memory(feats)  # [V, M, D], [V, M]
        ids = tokenizer.batch_encode(
            questions, self.max_question_len, bos=True,
            device=memory.device)  # [Q, L]
        x = self.encoder(ids, memory[video_of_question],
                         bias[video_of_question])  # [Q, D]
        return self.fc_answer(self.dropout(x))  # [Q, num_answers]

    def answer_probs(self, feats: VideoFeatures, video_of_question: Tensor,
                     questions: List[str]) -> Tensor:
        """Probability of every answer, ``[Q, num_answers]``, for
        ``questions`` about the videos ``video_of_question [Q]`` (what
        :meth:`predict` takes the best of; inference reports the top k)."""
        return self._logits(feats, video_of_question,
                            questions).detach().softmax(-1)

    def _memory(self, feats: VideoFeatures) -> Tuple[Tensor, Tensor]:
        """The video tokens at the encoder width with their time embedding,
        ``[V, M, D]``, and their attention bias ``[V, M]``."""
        memory, bias, steps = video_memory(feats)  # [V, M, C], [V, M]
        memory = self.video_proj(memory)  # [V, M, D]
        if self.time_embed is not None:
            num_steps = feats.num_clips * feats.grid[0]
            times = time_features(steps, num_steps, self.time_freqs)
            memory = memory + self.time_embed(times.to(memory.dtype))
        return memory, bias

    def forward(self, feats: VideoFeatures) -> Tensor:
        """Video tokens at the encoder width with their time embedding,
        ``[V, M, D]`` (the answers need questions: use :meth:`predict`)."""
        return self._memory(feats)[0]

    def _labelled(self, data_samples: SampleList
                  ) -> Tuple[List[int], List[str], List[int]]:
        videos, questions, answers = [], [], []
        for v, sample in enumerate(data_samples):
            for qa in sample.get('gt_qa', []):
                answer_id = int(qa.get('answer_id', -1))
                if answer_id >= self.num_answers:
                    raise ValueError(
                        f'answer {qa.get("answer")!r} has answer_id '
                        f'{answer_id} but num_answers={self.num_answers}; '
                        'raise num_answers to at least the size of the '
                        "dataset's answers vocabulary")
                if answer_id >= 0:
                    videos.append(v)
                    questions.append(qa['question'])
                    answers.append(answer_id)
        return videos, questions, answers

    def loss(self, feats: VideoFeatures,
             data_samples: SampleList) -> Dict[str, Tensor]:
        videos, questions, answers = self._labelled(data_samples)
        if not questions:
            zero = feats.tokens.sum() * 0. + sum(
                p.sum() for p in self.parameters()) * 0.
            # still a collective call: the other ranks may have questions
            return dict(loss_answer=global_mean(zero, 0) * self.loss_weight,
                        acc=zero.detach())
        device = feats.tokens.device
        logits = self._logits(feats, torch.tensor(videos, device=device),
                              questions)  # [Q, A]
        target = torch.tensor(answers, device=device)  # [Q]
        total = F.cross_entropy(
            logits, target, reduction='sum',
            label_smoothing=self.label_smoothing)
        loss = global_mean(total, target.numel())
        acc = (logits.argmax(-1) == target).float().mean()
        return dict(loss_answer=loss * self.loss_weight, acc=acc.detach())

    def predict(self, feats: VideoFeatures,
                data_samples: SampleList) -> SampleList:
        videos, questions = [], []
        for v, sample in enumerate(data_samples):
            for question in _questions(sample):
                videos.append(v)
                questions.append(question)
        if questions:
            scores, ids = self.answer_probs(
                feats, torch.tensor(videos, device=feats.tokens.device),
                questions).max(-1)  # [Q], [Q]
        for v, sample in enumerate(data_samples):
            sample.pred_qa = [
                dict(question=q, answer_id=int(ids[i]),
                     score=float(scores[i]))
                for i, (video, q) in enumerate(zip(videos, questions))
                if video == v
            ]
        return data_samples
