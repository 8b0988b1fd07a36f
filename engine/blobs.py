"""Content-addressed files on disk (``<var>/blobs/ab/abcdef…``): documents of cases, raw parts.

A file's name is its SHA-256, so writing the same content twice is harmless and a stored file can be
checked against its name at any time. Files are written to a temporary name and renamed, so a crash never
leaves half a file under a real name.
"""

import hashlib
from pathlib import Path

from .files import write_atomically


class BlobStore:
    def __init__(self, root):
        self.root = Path(root)

    def path(self, sha256):
        return self.root / sha256[:2] / sha256

    def put(self, content):
        """Store ``content`` (bytes); returns its SHA-256 (hex)."""
        digest = hashlib.sha256(content).hexdigest()
        target = self.path(digest)
        if target.is_file():
            return digest
        write_atomically(target, content)
        return digest

    def get(self, sha256):
        """The content stored under ``sha256`` (FileNotFoundError if absent)."""
        return self.path(sha256).read_bytes()


def blob_store(rt):
    return BlobStore(rt.settings.var_dir / "blobs")
