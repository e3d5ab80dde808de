from .video_data_sample import OptSampleList, SampleList, VideoDataSample

__all__ = ['VideoDataSample', 'SampleList', 'OptSampleList']
