"""Remember which file each DataLoader worker is loading, so that a worker
that dies (killed for memory, crashed in a decoder) can be named with it.

PyTorch reports a dead worker only by pid ("DataLoader worker (pid 4321)
is killed by signal: Killed"). Each worker writes the path it is about to
load to ``<dir>/<worker pid>``; :func:`explain_worker_death` maps the pid in
such an error back to that path.
"""
import os
import os.path as osp
import re
import shutil
import tempfile
from typing import Optional

from torch.utils.data import get_worker_info

__all__ = ['note_loading', 'explain_worker_death', 'clear_loading_notes']


def _notes_dir(owner: Optional[int] = None) -> str:
    owner = os.getpid() if owner is None else owner
    return osp.join(tempfile.gettempdir(), f'hvlm-loading-{owner}')


def note_loading(path: str) -> None:
    """Called by the dataset before it opens ``path``; a no-op outside
    DataLoader workers."""
    if get_worker_info() is None:
        return
    directory = _notes_dir(os.getppid())
    os.makedirs(directory, exist_ok=True)
    with open(osp.join(directory, str(os.getpid())), 'w') as f:
        f.write(path)


_PID_RE = re.compile(r'DataLoader worker \(pid\(?s?\)? ?([\d, ]+)\)')


def explain_worker_death(err: BaseException) -> Optional[str]:
    """For a dead-worker error, the files those workers were loading."""
    match = _PID_RE.search(str(err))
    if match is None:
        return None
    names = []
    for pid in re.findall(r'\d+', match.group(1)):
        note = osp.join(_notes_dir(), pid)
        if osp.isfile(note):
            with open(note) as f:
                names.append(f'worker {pid} was loading {f.read()}')
    return '; '.join(names) or None


def clear_loading_notes() -> None:
    """Remove this process's notes (called when a run ends)."""
    shutil.rmtree(_notes_dir(), ignore_errors=True)
