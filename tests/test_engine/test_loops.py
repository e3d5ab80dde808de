"""hvlm's ValLoop / TestLoop pass over a batch whose every video was
skipped; mmengine 0.10's loops index ``outputs[-1]`` and crash on it."""
import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

from hvlm.datasets.collate import video_collate
from hvlm.registry import HOOKS, METRICS, MODELS


@MODELS.register_module(force=True)
class _EchoModel(BaseModel):
    """Predicts each sample's own value; ``[]`` for an empty batch, as the
    hvlm models do."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor', **kwargs):
        return [dict(value=float(x.sum())) for x in inputs]


@METRICS.register_module(force=True)
class _SeenMetric(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.extend(s['value'] for s in data_samples)

    def compute_metrics(self, results):
        return dict(n=len(results), total=sum(results))


@HOOKS.register_module(force=True)
class _CountIters(Hook):

    def __init__(self):
        self.skipped = []
        self.iters = 0

    def after_val_iter(self, runner, batch_idx, data_batch, outputs):
        self.iters += 1
        self.skipped += [s[0] for s in data_batch['skipped']]

    after_test_iter = after_val_iter


class _Items(torch.utils.data.Dataset):
    """Six videos; 2 and 3 (one whole batch of two) are unreadable."""

    metainfo = dict(classes=('a', ))

    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i in (2, 3):
            return dict(inputs=None, data_samples=None,
                        skipped=[(f'v{i}.mp4', 'unreadable')])
        return dict(inputs=torch.full((2, ), float(i)), data_samples={},
                    skipped=[])


def test_all_skipped_batch_is_passed_over(tmp_path):
    loader = dict(dataset=_Items(), batch_size=2, num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=False),
                  collate_fn=video_collate)
    hook = _CountIters()
    runner = Runner(
        model=_EchoModel(), work_dir=str(tmp_path), default_scope='hvlm',
        val_dataloader=loader, val_cfg=dict(type='ValLoop'),
        val_evaluator=dict(type='_SeenMetric'),
        test_dataloader=loader, test_cfg=dict(type='TestLoop'),
        test_evaluator=dict(type='_SeenMetric'), custom_hooks=[hook])
    for run in (runner.val, runner.test):
        hook.iters, hook.skipped = 0, []
        metrics = run()
        # the four readable videos are scored, each once: 2*(0+1+4+5)
        assert metrics == dict(n=4, total=20.0)
        assert hook.iters == 3
        assert hook.skipped == ['v2.mp4', 'v3.mp4']
