"""Atomic local writes for checkpoints, and finding a checkpoint to resume.

mmengine writes checkpoints with ``open(path, 'wb')``: a job killed during
the save, or a full disk, leaves a truncated ``epoch_N.pth`` in place of a
good one. hvlm replaces mmengine's local file backend with one that writes to
a temporary file in the same directory, fsyncs it and renames it over the
target, so a checkpoint file is always either the old one or the new one.

The temporary file is named ``.<target name>.<host>.<pid>.<8 random
characters>.tmp``. A process killed during a write leaves one behind (a
whole checkpoint's size); :func:`remove_stale_temp_files` deletes the ones
whose writer is gone, and nothing else, when a run starts. The finished file
gets the mode a plain ``open(path, 'w')`` gives (``0o666`` less the umask),
not ``mkstemp``'s ``0o600``.
"""
import glob
import os
import os.path as osp
import re
import socket
import tempfile
import time
import zipfile
from typing import Callable, List, Optional, Tuple, Union

from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio import io as mmengine_io

__all__ = [
    'atomic_write_bytes', 'AtomicLocalBackend', 'register_atomic_backend',
    'checkpoint_problem', 'find_resumable_checkpoint',
    'remove_stale_temp_files'
]

# A temporary file whose writer ran on another machine (a shared work dir)
# cannot be checked by pid; one untouched for this long is not being written.
FOREIGN_STALE_AFTER_S = 3600


def _host() -> str:
    # dots would make the name ambiguous to parse
    return re.sub(r'[^A-Za-z0-9-]', '-', socket.gethostname()) or 'host'


def _umask() -> int:
    try:  # Linux >= 4.7 reports it without changing it
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, then restore
    os.umask(mask)
    return mask


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
        dir=directory,
        prefix=f'.{osp.basename(path)}.{_host()}.{os.getpid()}.',
        suffix='.tmp')
    try:
        os.fchmod(fd, 0o666 & ~_umask())
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


# .<target>.<host>.<pid>.<mkstemp's 8 characters>.tmp, as written above
_TEMP_NAME = re.compile(r'^\.(?P<target>.+)\.(?P<host>[A-Za-z0-9-]+)\.'
                        r'(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp$')


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temp_files(
        work_dir: str, log: Callable[[str], None] = print) -> List[str]:
    """Delete the temporary files that :func:`atomic_write_bytes` left in
    ``work_dir`` when its process was killed mid-write.

    Only names of exactly that form are touched, only directly in
    ``work_dir``, and only when their writer is gone: on this machine, its
    pid is not running; from another machine (a shared file system), the
    file was not modified for ``FOREIGN_STALE_AFTER_S``. Each removal is
    reported through ``log``.

    Returns:
        The removed paths.
    """
    if not osp.isdir(work_dir):
        return []
    host, removed = _host(), []
    for name in sorted(os.listdir(work_dir)):
        match = _TEMP_NAME.match(name)
        path = osp.join(work_dir, name)
        if match is None or not osp.isfile(path):
            continue
        try:
            if match['host'] == host:
                if _pid_alive(int(match['pid'])):
                    continue
                why = 'which is not running'
            else:
                idle = time.time() - osp.getmtime(path)
                if idle <= FOREIGN_STALE_AFTER_S:
                    continue
                why = f'not written to for {idle / 3600:.1f} h'

            size = osp.getsize(path)
            os.remove(path)
        except FileNotFoundError:  # renamed or removed meanwhile
            continue
        removed.append(path)
        log(f'removed {path} ({size} bytes): an unfinished write of '
            f'{match["target"]} by process {match["pid"]} on '
            f'{match["host"]}, {why}')
    return removed
