"""tools/analysis_tools/probe_answers.py: a linear probe of an answer from
the pooled video tokens."""
import importlib.util
import json

import pytest
import torch

from hvlm.analysis.answer_probe import linear_probe, token_spread
from .conftest import REPO, data_options

TINY = str(REPO / 'tests' / 'data' / 'configs' / 'tiny_sports.py')
QUESTION = 'what colour is the object?'


def load_tool():
    path = REPO / 'tools' / 'analysis_tools' / 'probe_answers.py'
    spec = importlib.util.spec_from_file_location('probe_answers', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_linear_probe_reads_a_linear_answer():
    """Answers that a direction of the features decides are read exactly
    on new samples; an answer the probe never saw counts as wrong; the
    majority baseline is the most frequent training answer's share."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 8, generator=g) * 3
    names = ['red', 'green', 'blue']

    def draw(labels):
        x = centres[labels] + 0.1 * torch.randn(len(labels), 8, generator=g)
        return x, [names[i] for i in labels]

    train_x, train_y = draw([0, 0, 0, 1, 1, 2] * 5)
    test_x, test_y = draw([0, 1, 2, 2])
    out = linear_probe(train_x, train_y, test_x, test_y)
    assert out == dict(train=1., test=1., majority=0.25, num_answers=3)
    out = linear_probe(train_x, train_y, test_x, test_y[:3] + ['pink'])
    assert out['test'] == 0.75


def test_token_spread_against_the_tokens_themselves():
    """From each video's mean token and mean square alone, the RMS of the
    tokens, of their shared mean, of the deviations from it and of the
    videos' means about it, as computed here from all the tokens."""
    g = torch.Generator().manual_seed(0)
    tokens = torch.randn(5, 7, 4, generator=g, dtype=torch.float64) * 0.3
    tokens = tokens + torch.tensor([2., -1., 0.5, 3.], dtype=torch.float64)
    out = token_spread(tokens.mean(1), tokens.pow(2).mean((1, 2)))
    flat = tokens.reshape(-1, 4)
    shared = flat.mean(0)
    expected = dict(
        token_rms=flat.pow(2).mean().sqrt(),
        mean_token_rms=shared.pow(2).mean().sqrt(),
        deviation_rms=(flat - shared).pow(2).mean().sqrt(),
        between_videos_rms=(tokens.mean(1) - shared).pow(2).mean().sqrt())
    for key, value in expected.items():
        assert out[key] == pytest.approx(value.item(), rel=1e-9), key


def test_tool_on_the_untrained_encoder(tiny_demo_root, tmp_path):
    tool = load_tool()
    out = tmp_path / 'probe.json'
    result = tool.main([TINY, 'none', '--question', QUESTION, '--steps',
                        '20', '--out', str(out), '--cfg-options',
                        *data_options(tiny_demo_root)])
    assert json.loads(out.read_text()) == result

    def asked(split):  # sports videos of the split asking the question
        qa = json.load(open(f'{tiny_demo_root}/{split}/annotations/'
                            'video_qa.json'))
        return sum(v['video_id'].startswith('sports') and any(
            p['question'] == QUESTION for p in v['qa_pairs']) for v in qa)

    assert result['num_train'] == asked('training') > 0
    assert result['num_test'] == asked('test') > 0
    assert set(result) >= {'mean', 'max', 'mean+max', 'tokens'}
    assert result['tokens']['token_rms'] > 0
    assert all(0 <= result[p]['test'] <= 1 for p in ('mean', 'max'))
    with pytest.raises(ValueError, match='asks'):
        tool.main([TINY, 'none', '--question', 'who?', '--steps', '1',
                   '--cfg-options', *data_options(tiny_demo_root)])
