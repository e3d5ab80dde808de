"""Errors raised by hvlm's datasets and loading transforms."""


class AnnotationError(ValueError):
    """An annotation file breaks the documented layout.

    The message names the file, the entry (index and ``video_id``), the field
    (e.g. ``actions[1].end``), the value found and what was expected, so the
    file can be fixed without reading hvlm's code. Raised while the dataset is
    built, i.e. before any training step runs.
    """


class VideoReadError(RuntimeError):
    """A video cannot be opened, decoded or sampled.

    Args:
        filename (str): The video file at fault.
        reason (str): What went wrong, e.g. ``'file is empty (0 bytes)'``.
    """

    def __init__(self, filename: str, reason: str) -> None:
        self.filename = str(filename)
        self.reason = str(reason)
        super().__init__(f'cannot read video {self.filename}: {self.reason}')

    def __reduce__(self):
        # Keep the two-argument constructor picklable, so the error survives
        # the trip from a DataLoader worker to the main process.
        return type(self), (self.filename, self.reason)


class ImageReadError(VideoReadError):
    """An image cannot be read or decoded. A :class:`VideoReadError`, so
    the datasets' skip logic, ``video_collate`` and ``SkippedVideoHook``
    count unreadable images exactly as unreadable videos."""

    def __init__(self, filename: str, reason: str) -> None:
        self.filename = str(filename)
        self.reason = str(reason)
        RuntimeError.__init__(
            self, f'cannot read image {self.filename}: {self.reason}')
