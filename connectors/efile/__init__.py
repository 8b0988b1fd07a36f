"""E-file targets: where a closed case's xdomea package goes, and where the E-Akte's answers come from.

One small interface (``EfileTarget``), the way ``httpx`` has one transport method: the engine hands over a
finished, validated package and gets back a location it records; it reads the package back by that location
to verify it, removes it after retention, and collects ``Abgabe.ImportBestaetigen.0402`` answers. The
shipped implementation is ``FileOutbox`` (a directory an importer copies from); a CMIS, an
``FVDaten.SGOAblegen.0605`` or a vendor adapter implements the same four methods and is registered in
``TARGETS`` by name, the same way this one is.
"""

import os
from pathlib import Path
from typing import Protocol

from engine.files import write_atomically


class EfileError(Exception):
    """A target could not take, give back or remove a package (the connector's own errors translated)."""


class PackageExists(EfileError):
    """A package of that name is there already: packages are never overwritten."""

    def __init__(self, message, location):
        super().__init__(message)
        self.location = location


class EfileTarget(Protocol):
    name: str

    def deliver(self, filename: str, content: bytes) -> str:
        """Hand over one package; returns its location (recorded on the export). Never overwrites: raises
        PackageExists (with the location as ``location``) when the name is taken."""

    def read(self, location: str) -> bytes:
        """The package as it is now at ``location`` (EfileError if it is gone)."""

    def remove(self, location: str) -> None:
        """Delete the package (after retention); no error when it is already gone."""

    def answers(self) -> list:
        """Messages waiting from the E-Akte: (key, bytes) pairs; ``settle(key, ok)`` once handled."""

    def settle(self, key: str, ok: bool) -> None:
        """Move an answer out of the way: done (ok) or refused (kept aside for an operator)."""


class FileOutbox:
    """A tenant's E-Akte outbox on disk (``var/efile/<tenant>/`` unless configured): packages are written
    atomically (temporary name, fsync, rename) and stay as written; answers arrive in ``inbox/`` and move to
    ``inbox/done/`` or ``inbox/refused/`` when handled."""

    name = "outbox"

    def __init__(self, directory):
        self.directory = Path(directory)
        self.inbox = self.directory / "inbox"

    def deliver(self, filename, content):
        if "/" in filename or filename.startswith("."):
            raise EfileError(f"not a plain file name: {filename!r}")
        target = self.directory / filename
        if target.exists():
            raise PackageExists(f"{target} exists already: a package is never overwritten", str(target))
        try:
            write_atomically(target, content)
        except OSError as exc:
            raise EfileError(f"cannot write {target}: {exc}") from exc
        return str(target)

    def read(self, location):
        try:
            return Path(location).read_bytes()
        except OSError as exc:
            raise EfileError(f"cannot read {location}: {exc.strerror or exc}") from exc

    def remove(self, location):
        try:
            Path(location).unlink(missing_ok=True)
        except OSError as exc:
            raise EfileError(f"cannot remove {location}: {exc}") from exc

    def answers(self):
        if not self.inbox.is_dir():
            return []
        found = []
        for path in sorted(self.inbox.iterdir()):
            if path.is_file() and path.suffix.lower() == ".xml" and not path.name.startswith("."):
                found.append((path.name, path.read_bytes()))
        return found

    def settle(self, key, ok):
        folder = self.inbox / ("done" if ok else "refused")
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(self.inbox / key, folder / key)


# name -> factory(directory): how a tenant's configuration ("efile.target") picks its connector.
TARGETS = {"outbox": FileOutbox}
