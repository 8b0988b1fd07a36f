"""Writing a file so that readers see either the old content or the whole new one, never half of it."""

import os
import tempfile
from pathlib import Path


def write_atomically(target, content, mode=None):
    """Write ``content`` (bytes) to ``target``: a temporary file in the same folder, flushed to disk, then
    renamed over the target. ``mode`` sets the permissions (e.g. 0o600 for private keys)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
