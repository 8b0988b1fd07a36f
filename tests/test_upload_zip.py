"""engine.uploads without a web server: names, limits and zips (in memory only)."""

import io
import zipfile

import pytest

from engine.errors import DeployError
from engine.uploads import TooLarge, UploadLimits, bundle_from_parts, safe_path


def zipped(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in entries.items():
            z.writestr(name, content)
    return buf.getvalue()


@pytest.mark.parametrize("name, expected", [
    ("p.bpmn", "p.bpmn"), ("forms/a.schema.json", "forms/a.schema.json"),
    ("../p.bpmn", None), ("a/../../p.bpmn", None), ("/etc/passwd", None), ("C:/x.bpmn", None),
    ("a\\..\\p.bpmn", None), ("a//p.bpmn", None), ("./p.bpmn", None), ("p.bpmn\0.txt", None), ("", None),
])
def test_safe_path(name, expected):
    assert safe_path(name) == expected


def test_a_folder_zip_loses_its_top_folder_and_skips_tests_junk_and_other_types():
    archive = zipped({"antrag/antrag.bpmn": b"<x/>", "antrag/forms/f.json": b"{}", "antrag/tests/t.bpmn": b"<t/>",
                      "antrag/.DS_Store": b"", "antrag/README.pdf": b"%PDF", "antrag/__MACOSX/._a.bpmn": b""})
    bundle = bundle_from_parts([("antrag.zip", archive)])
    assert set(bundle.files) == {"antrag.bpmn", "forms/f.json"}


def test_too_many_entries_413():
    archive = zipped({f"f{i}.txt": b"" for i in range(1001)})
    with pytest.raises(TooLarge, match="entries"):
        bundle_from_parts([("many.zip", archive)])


def test_zip_recognised_by_its_magic_even_without_the_name():
    bundle = bundle_from_parts([("upload", zipped({"p.bpmn": b"<x/>"}))])
    assert set(bundle.files) == {"p.bpmn"}


def test_one_entry_over_the_file_limit_413_before_unpacking():
    archive = zipped({"p.bpmn": b"\0" * 5000})
    with pytest.raises(TooLarge, match="a file"):
        bundle_from_parts([("p.zip", archive)], UploadLimits(file_bytes=4000))


def test_backslash_names_in_a_zip_refused():
    archive = zipped({"..\\..\\evil.bpmn": b"<x/>"})
    with pytest.raises(DeployError, match="leaves the folder"):
        bundle_from_parts([("p.zip", archive)])
