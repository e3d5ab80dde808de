"""RNG state travels through checkpoints; skipped videos are counted."""
import logging
import random
from types import SimpleNamespace

import numpy as np
import torch
from mmengine.logging import MessageHub, MMLogger

from hvlm.engine.hooks import get_rng_state
from hvlm.registry import HOOKS


def draw():
    return (random.random(), float(np.random.rand()),
            float(torch.rand(1)))


def test_rng_state_hook_restores_on_resume_only():
    hook = HOOKS.build(dict(type='RNGStateHook'))
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    expected = draw()
    draw()  # the run goes on, then dies

    # load_from (not a resume) must leave the generators alone
    hook.after_load_checkpoint(SimpleNamespace(_resume=False), checkpoint)
    hook.before_train(None)
    assert draw() != expected

    hook.after_load_checkpoint(SimpleNamespace(_resume=True), checkpoint)
    hook.before_train(None)
    assert draw() == expected


def test_rng_state_hook_gives_each_rank_its_own_state():
    """Saved by 2 ranks (rank 0 writes what HVLMRunner gathered): rank 1
    resumes from rank 1's state; with 3 ranks, rank 2 takes saved rank 0's
    and rank 0 warns."""
    hook = HOOKS.build(dict(type='RNGStateHook'))
    by_rank = []
    for seed in (10, 11):
        torch.manual_seed(seed), np.random.seed(seed), random.seed(seed)
        by_rank.append(get_rng_state())
    checkpoint = {}
    hook.before_save_checkpoint(
        SimpleNamespace(rng_states_by_rank=by_rank), checkpoint)
    assert len(checkpoint['rng_state_by_rank']) == 2

    def resumed_draw(rank, world_size):
        hook.after_load_checkpoint(
            SimpleNamespace(_resume=True, rank=rank, world_size=world_size),
            checkpoint)
        hook.before_train(None)
        return draw()

    expected = []
    for seed in (10, 11):
        torch.manual_seed(seed), np.random.seed(seed), random.seed(seed)
        expected.append(draw())
    assert resumed_draw(1, 2) == expected[1]
    assert resumed_draw(0, 2) == expected[0]
    records = _Records()
    logger = MMLogger.get_current_instance()
    logger.addHandler(records)
    try:
        assert resumed_draw(2, 3) == expected[0]
        resumed_draw(0, 3)  # rank 0 alone warns
    finally:
        logger.removeHandler(records)
    assert [m for m in records.messages if 'holds the RNG state of 2 '
            'process(es) and this run has 3' in m] == records.messages
    assert len(records.messages) == 1


def test_rng_state_hook_makes_validation_neutral():
    hook = HOOKS.build(dict(type='RNGStateHook'))
    torch.manual_seed(2)
    hook.before_val_epoch(None)
    torch.rand(100)  # validation draws
    hook.after_val_epoch(None)
    after_val = torch.rand(1)
    torch.manual_seed(2)
    assert torch.equal(torch.rand(1), after_val)


class _Records(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_skipped_video_hook_counts_and_names():
    hook = HOOKS.build(dict(type='SkippedVideoHook', max_names=1))
    hub = MessageHub.get_instance('test_skipped_video_hook')
    logger = MMLogger.get_instance('test_skipped_video_hook')
    runner = SimpleNamespace(message_hub=hub, logger=logger, epoch=4)
    hook.after_train_iter(runner, 0, dict(skipped=[('a.mp4', 'truncated')]))
    hook.after_train_iter(runner, 1, dict(skipped=[]))
    hook.after_train_iter(
        runner, 2, dict(skipped=[('b.mp4', 'empty'), ('a.mp4', 'truncated')]))
    records = _Records()
    logger.addHandler(records)
    hook.after_train_epoch(runner)
    text = '\n'.join(records.messages)
    assert hub.get_scalar('train/skipped_videos').current() == 3
    assert 'train epoch 5: skipped 3 unreadable video clip(s) from 2 ' \
        'file(s)' in text
    assert 'a.mp4: truncated' in text
    assert '1 more' in text
    hook.after_train_epoch(runner)  # counts reset each epoch
    assert hub.get_scalar('train/skipped_videos').current() == 0
    # the same files in a later epoch are reported again (mmengine's
    # logger drops a warning identical to an earlier one)
    runner.epoch = 5
    hook.after_train_iter(
        runner, 0, dict(skipped=[('b.mp4', 'empty'), ('a.mp4', 'truncated')]))
    hook.after_train_iter(runner, 1, dict(skipped=[('a.mp4', 'truncated')]))
    hook.after_train_epoch(runner)
    assert 'train epoch 6: skipped 3' in '\n'.join(records.messages)


def test_progress_bar_ends_its_line_before_the_metrics(capsys):
    hook = HOOKS.build(dict(type='ProgressBarHook'))
    runner = SimpleNamespace(val_dataloader=[0, 1, 2])
    hook.before_val_epoch(runner)
    for i in range(3):
        hook.after_val_iter(runner, i)
    out = capsys.readouterr().out
    assert '3/3' in out and out.endswith('\n')
    hook.after_val_epoch(runner)  # nothing left to print
    assert capsys.readouterr().out == ''
