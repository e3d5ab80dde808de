"""Generate a demo data set once, safely, whoever asks first."""
import fcntl
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Callable


def ensure_generated(root: str, version: int, kwargs: dict,
                     generate: Callable[[str], None], who: str) -> str:
    """Call ``generate(tmp_dir)`` unless ``root`` already holds its output
    for this ``version`` and ``kwargs``; return ``root`` (absolute).

    ``root/.complete`` records version and arguments. The data is written
    to a temporary directory beside ``root`` and renamed into place under an
    ``fcntl`` lock (``root + '.lock'``), so concurrent processes generate it
    once and readers never see half a set. A non-empty ``root`` without
    ``.complete`` was not written here and is never overwritten (``who``,
    the caller's name, is in the error); an older version of our own output
    is replaced.
    """
    root = osp.abspath(root)
    record = dict(version=version,
                  kwargs=json.loads(json.dumps(kwargs, sort_keys=True)))
    marker = osp.join(root, '.complete')

    def complete() -> bool:
        try:
            with open(marker) as f:
                return json.load(f) == record
        except (OSError, ValueError):
            return False

    if complete():
        return root
    parent, name = osp.split(root)
    os.makedirs(parent, exist_ok=True)
    with open(root + '.lock', 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if complete():
                return root
            if osp.isdir(root) and os.listdir(root) and \
                    not osp.exists(marker):
                raise FileExistsError(
                    f'{root} exists and was not written by {who} (no '
                    '.complete file); refusing to overwrite it. Move it '
                    'away or point the demo root elsewhere.')
            tmp = tempfile.mkdtemp(prefix=name + '.tmp-', dir=parent)
            try:
                generate(tmp)
                with open(osp.join(tmp, '.complete'), 'w') as f:
                    json.dump(record, f)
                if osp.exists(root):  # an older version of our own output
                    shutil.rmtree(root)
                os.rename(tmp, root)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return root
