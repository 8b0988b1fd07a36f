"""Uploaded model files: from the parts of a request (several files, or one zip of a process folder) to a
``Bundle``, within size limits and without ever writing an uploaded byte to disk.

A zip is read in memory. Its entries are checked twice against the limits: by the sizes the archive
declares, before anything is unpacked, and by the bytes that actually come out, while unpacking (a forged
header cannot smuggle a bomb past the first check). Names that leave the folder (``../``, absolute paths,
drive letters) are refused, never normalised.
"""

import io
import posixpath
import re
import zipfile
import zlib
from dataclasses import dataclass

from .deploy import BUNDLE_SUFFIXES, SKIP_DIRS
from .errors import DeployError, OzgflowError, Problem
from .models import Bundle

MIB = 1024 * 1024
ACCEPTED_SUFFIXES = BUNDLE_SUFFIXES + (".form",)  # .form: Camunda Forms (form-js JSON)
MAX_ENTRIES = 1000  # files in one zip: a process folder has a handful
ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 64 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class UploadLimits:
    """Bytes allowed per file, per request and unpacked from one zip (all three configurable)."""

    file_bytes: int = 10 * MIB
    request_bytes: int = 50 * MIB
    unpacked_bytes: int = 50 * MIB


class TooLarge(OzgflowError):
    """An upload is over one of the limits (HTTP 413)."""


def bundle_from_parts(parts, limits=UploadLimits(), source="(upload)"):
    """The bundle of uploaded ``parts``, a list of (file name, bytes).

    One zip part is a process folder and is unpacked in memory; otherwise every part is one file. Raises
    TooLarge over a limit and DeployError for names or archives we refuse."""
    if not parts:
        raise DeployError([Problem(source, None, None, "no files in the upload (send them as parts named 'files')")])
    total = 0
    for name, data in parts:
        if len(data) > limits.file_bytes:
            raise TooLarge(f"{name}: the file has {len(data)} bytes, the limit is {limits.file_bytes}")
        total += len(data)
    if total > limits.request_bytes:
        raise TooLarge(f"the upload has {total} bytes, the limit is {limits.request_bytes}")
    zips = [(n, d) for n, d in parts if n.lower().endswith(".zip") or d[:4] == ZIP_MAGIC]
    if zips:
        if len(parts) > 1:
            raise DeployError([Problem(zips[0][0], None, None, "a zip must be uploaded alone (one process folder)")])
        return Bundle(unpack_zip(*zips[0], limits), source=zips[0][0])
    files, problems = {}, []
    for name, data in parts:
        path = safe_path(name)
        if path is None:
            problems.append(Problem(name, None, None, "the file name is not allowed (a path that leaves the folder)"))
        elif not path.lower().endswith(ACCEPTED_SUFFIXES):
            problems.append(Problem(path, None, None, "this kind of file is not accepted; upload "
                                                      + ", ".join(ACCEPTED_SUFFIXES) + " files or one .zip"))
        elif path in files:
            problems.append(Problem(path, None, None, "the same file name twice in one upload"))
        else:
            files[path] = data
    if problems:
        raise DeployError(problems)
    return Bundle(files, source=source)


def safe_path(name):
    """``name`` as a relative POSIX path inside the upload, or None if it would leave the folder."""
    if not name or "\0" in name or "\\" in name or name.startswith("/") or _DRIVE.match(name):
        return None
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in ("", ".", ".."):
        return None
    return posixpath.join(*parts)


def unpack_zip(name, data, limits):
    """{path: bytes} of the model files in the zip ``data``: checked, never written to disk.

    A single top folder (the process folder zipped with its name) is stripped; entries of other types,
    folders named ``tests`` and macOS metadata are skipped the way ``ozgflow deploy <folder>`` skips them."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise DeployError([Problem(name, None, None, f"not a readable zip archive: {exc}")]) from None
    if len(entries) > MAX_ENTRIES:
        raise TooLarge(f"{name}: {len(entries)} entries, at most {MAX_ENTRIES} are accepted")
    bad = [i.filename for i in entries if safe_path(i.filename) is None]
    if bad:
        raise DeployError([Problem(f"{name}:{b}", None, None, "the path leaves the folder: refused") for b in bad])
    declared = 0
    for info in entries:
        if info.file_size > limits.file_bytes:
            raise TooLarge(f"{name}:{info.filename} unpacks to {info.file_size} bytes, "
                           f"the limit is {limits.file_bytes} a file")
        declared += info.file_size
    if declared > limits.unpacked_bytes:
        raise TooLarge(f"{name} unpacks to {declared} bytes, the limit is {limits.unpacked_bytes}")
    prefix = _common_folder([i.filename for i in entries])
    files, unpacked = {}, 0
    for info in entries:
        path = info.filename[len(prefix):]
        folders = path.split("/")[:-1]
        if (set(folders) & (SKIP_DIRS | {"__MACOSX"}) or path.rsplit("/", 1)[-1].startswith(".")
                or not path.lower().endswith(ACCEPTED_SUFFIXES)):
            continue
        content = _read_entry(archive, info, name, limits, limits.unpacked_bytes - unpacked)
        unpacked += len(content)
        files[path] = content
    return files


def _read_entry(archive, info, name, limits, room):
    """One entry's bytes, read in chunks; stops at the declared size or a limit, whichever comes first."""
    cap = min(info.file_size, limits.file_bytes, room)
    out = bytearray()
    try:
        with archive.open(info) as stream:
            while True:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                out += chunk
                if len(out) > cap:
                    raise TooLarge(f"{name}:{info.filename} unpacks to more than its declared size or the limit "
                                   f"({cap} bytes): refused")
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, zlib.error, EOFError, ValueError) as exc:
        # RuntimeError: encrypted entries; NotImplementedError: compression methods zipfile lacks
        raise DeployError([Problem(f"{name}:{info.filename}", None, None,
                                   f"the entry cannot be unpacked: {exc}")]) from None
    return bytes(out)


def _common_folder(names):
    """'folder/' when every entry lies below the same top folder, else ''."""
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1 and all("/" in n for n in names):
        return next(iter(tops)) + "/"
    return ""
