"""Fault injection for tests: a dataset whose DataLoader worker is killed
when it meets a chosen video, as the kernel's OOM killer would."""
import os
import signal

from hvlm.datasets import VideoDataset
from hvlm.registry import DATASETS


@DATASETS.register_module()
class WorkerKillingVideoDataset(VideoDataset):

    def __init__(self, *args, kill_on: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.kill_on = kill_on

    def prepare_data(self, idx):
        if self.get_data_info(idx)['video_id'] == self.kill_on:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().prepare_data(idx)
