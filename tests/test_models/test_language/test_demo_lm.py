"""The texts the demo LM is trained on (tools/misc/train_demo_lm.py)."""
import pytest
import torch

from hvlm.models.language.demo_lm import dataset_texts, packed_row

QA = 'question: {question} answer:'
CAPTION = 'caption from {start:.1f}s to {end:.1f}s:'


class FakeDataset:
    """The two methods dataset_texts reads, over a fixed data list."""

    def __init__(self, infos):
        self.infos = infos

    def full_init(self):
        pass

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, i):
        return self.infos[i]


INFOS = [
    dict(qa_pairs=[dict(question='what colour is it?', answer='red'),
                   dict(question='how many?', answer='two')],
         # not in time order: the description follows time
         captions=[dict(text='a red bar spins', time=[2.0, 4.5]),
                   dict(text='a red disc rests', time=[0.0, 2.0])]),
    dict(qa_pairs=[dict(question='what colour is it?', answer='blue')]),
]


def test_texts_are_the_prompts_with_their_answers():
    assert dataset_texts(FakeDataset(INFOS), QA, CAPTION) == [
        'question: what colour is it? answer: red',
        'question: how many? answer: two',
        'caption from 2.0s to 4.5s: a red bar spins',
        'caption from 0.0s to 2.0s: a red disc rests',
        'question: what colour is it? answer: blue',
    ]


def test_context_adds_each_text_after_its_video_in_words():
    texts = dataset_texts(FakeDataset(INFOS), QA, CAPTION, context=True)
    described = 'a red disc rests a red bar spins'
    assert texts == [
        'question: what colour is it? answer: red',
        f'{described} question: what colour is it? answer: red',
        'question: how many? answer: two',
        f'{described} question: how many? answer: two',
        'caption from 2.0s to 4.5s: a red bar spins',
        'a red bar spins caption from 2.0s to 4.5s: a red bar spins',
        'caption from 0.0s to 2.0s: a red disc rests',
        'a red disc rests caption from 0.0s to 2.0s: a red disc rests',
        # a video without captions has nothing to describe it
        'question: what colour is it? answer: blue',
    ]
    # the plain texts are the same as without context, in the same order
    assert [t for t in texts if t.startswith(('question', 'caption'))] == \
        dataset_texts(FakeDataset(INFOS), QA, CAPTION)


def test_no_text_is_an_error():
    with pytest.raises(ValueError, match='no question and no caption'):
        dataset_texts(FakeDataset([dict()]), QA, CAPTION, context=True)


def test_packed_rows_join_whole_texts_up_to_the_length():
    texts = [[5, 6, 0], [7, 0], [8, 9, 10, 0]]  # 0: the end token
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(20):
        row = packed_row(texts, 11, g)
        assert len(row) == 11
        # split at the end tokens: every piece but the last is a whole text,
        # the last a text's beginning
        pieces, start = [], 0
        for i, t in enumerate(row):
            if t == 0:
                pieces.append(row[start:i + 1])
                start = i + 1
        rest = row[start:]
        assert all(p in texts for p in pieces)
        assert any(t[:len(rest)] == rest for t in texts)
        seen.update(map(tuple, pieces))
    assert seen == set(map(tuple, texts))  # drawn from all of them
    with pytest.raises(ValueError, match='length=0'):
        packed_row(texts, 0, g)
