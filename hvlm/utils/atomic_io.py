"""Atomic local writes for checkpoints, and finding a checkpoint to resume.

mmengine writes checkpoints with ``open(path, 'wb')``: a job killed during
the save, or a full disk, leaves a truncated ``epoch_N.pth`` in place of a
good one. hvlm replaces mmengine's local file backend with one that writes to
a temporary file in the same directory, fsyncs it and renames it over the
target, so a checkpoint file is always either the old one or the new one.
"""
import glob
import os
import os.path as osp
import tempfile
import zipfile
from typing import Callable, List, Optional, Tuple, Union

from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio import io as mmengine_io

__all__ = [
    'atomic_write_bytes', 'AtomicLocalBackend', 'register_atomic_backend',
    'checkpoint_problem', 'find_resumable_checkpoint'
]


def atomic_write_bytes(path: Union[str, os.PathLike], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the
    complete new one, never a part.

    Raises:
        OSError: the write failed (e.g. the disk is full); the message names
            the file, and ``path`` is left as it was.
    """
    path = os.fspath(path)
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix=f'.{osp.basename(path)}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if osp.exists(tmp):
            os.remove(tmp)
        if isinstance(err, OSError):
            raise OSError(
                err.errno, f'writing {path} failed ({err.strerror or err}); '
                'the previous file, if any, is untouched') from err
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend with atomic ``put`` / ``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        atomic_write_bytes(filepath, obj)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, os.PathLike],
                 encoding: str = 'utf-8') -> None:
        atomic_write_bytes(filepath, obj.encode(encoding))


def register_atomic_backend() -> None:
    """Make :class:`AtomicLocalBackend` serve local paths (idempotent)."""
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    # get_file_backend caches instances; drop cached plain local backends
    for key, backend in list(mmengine_io.backend_instances.items()):
        if type(backend) is LocalBackend:
            del mmengine_io.backend_instances[key]


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be a complete checkpoint, or None if it can.

    Checks the zip container torch saves (every member's CRC), without
    unpickling anything.
    """
    if not osp.isfile(path):
        return 'missing'
    if osp.getsize(path) == 0:
        return 'empty (0 bytes)'
    if not zipfile.is_zipfile(path):
        return 'truncated or not a PyTorch checkpoint'
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f'corrupt ({err})'
    return f'corrupt (member {bad} fails its CRC)' if bad else None


def find_resumable_checkpoint(
        work_dir: str,
        warn: Callable[[str], None] = print) -> Tuple[Optional[str],
                                                       List[str]]:
    """The newest complete checkpoint in ``work_dir``.

    Candidates are ``epoch_*.pth`` / ``iter_*.pth`` and the file named in
    ``last_checkpoint``, newest first; incomplete ones are reported through
    ``warn`` and skipped.

    Returns:
        (path or None, the skipped paths)
    """
    candidates = set(
        glob.glob(osp.join(work_dir, 'epoch_*.pth')) +
        glob.glob(osp.join(work_dir, 'iter_*.pth')))
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named:
            candidates.add(named)
    skipped = []
    for path in sorted(
            candidates,
            key=lambda p: osp.getmtime(p) if osp.exists(p) else -1,
            reverse=True):
        problem = checkpoint_problem(path)
        if problem is None:
            return path, skipped
        warn(f'checkpoint {path} is {problem}; trying an older one')
        skipped.append(path)
    return None, skipped
