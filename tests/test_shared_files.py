"""The one writer of the files a user shares (``annotator.services.export.files``): mode, all or nothing, no overwrite.

`annotator export` and `annotator report` both write through it; their own tests check the commands.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from annotator.errors import AnnotatorError, InputError
from annotator.report import ReportError
from annotator.services.export import files
from annotator.services.export.files import check_targets, write_files, write_text
from tests.conftest import umask


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_mode_is_0666_less_the_umask_and_the_umask_is_left_alone(tmp_path: Path, mask: int) -> None:
    with umask(mask):
        write_files(
            [(tmp_path / "a.csv", lambda t: t.write_text("x")), (tmp_path / "a.json", lambda t: None)], False
        )
        write_text(tmp_path / "b.md", "# b\n", False)
        assert os.umask(mask) == mask  # read back: unchanged by the writer
    for name in ("a.csv", "a.json", "b.md"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask, name
    assert (tmp_path / "b.md").read_bytes() == b"# b\n"


def test_a_failing_writer_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("old")

    def broken(_tmp: Path) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(InputError, match=r"cannot write .*a\.csv\.provenance\.json: No space left on device"):
        write_files(
            [
                (tmp_path / "a.csv", lambda t: t.write_text("new")),
                (tmp_path / "a.csv.provenance.json", broken),
            ],
            True,
        )
    assert _names(tmp_path) == ["a.csv"] and (tmp_path / "a.csv").read_text() == "old"
    # a bug in a writer stays a bug, and still leaves no temporary file
    with pytest.raises(ZeroDivisionError):
        write_files([(tmp_path / "b.csv", lambda t: 1 / 0)], False)
    assert _names(tmp_path) == ["a.csv"]


def test_the_first_file_lands_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moved: list[str] = []
    real = os.replace

    def record(src: Path, dst: Path) -> None:
        moved.append(Path(dst).name)
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", record)
    write_files(
        [
            (tmp_path / n, lambda t: t.write_text("x"))
            for n in ("x.csv", "x.csv.codebook.yaml", "x.csv.provenance.json")
        ],
        False,
    )
    assert moved == ["x.csv.provenance.json", "x.csv.codebook.yaml", "x.csv"]


def test_refusals_name_the_file(tmp_path: Path) -> None:
    out = tmp_path / "labels.csv"
    side = tmp_path / "labels.csv.provenance.json"
    side.write_text("{}")
    with pytest.raises(
        InputError,
        match=f"^{re.escape(str(side))} already exists; pass overwrite=True to replace it, or choose another out$",
    ):
        check_targets([out, side], False)
    check_targets([out, side], True)
    # a dangling link counts as a file: it is not silently replaced
    link = tmp_path / "report.html"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ReportError, match=r"report\.html already exists"):
        check_targets([link], False, ReportError)
    # a folder where a sidecar goes, a folder named as the file, a missing folder
    (tmp_path / "x.csv.codebook.yaml").mkdir()
    with pytest.raises(AnnotatorError, match=r"x\.csv\.codebook\.yaml is a folder"):
        check_targets([tmp_path / "x.csv", tmp_path / "x.csv.codebook.yaml"], True)
    with pytest.raises(AnnotatorError, match=r"is a folder; give a file name, e.g. out='.*/report\.html'"):
        check_targets([tmp_path], False, ReportError, example="report.html")
    with pytest.raises(AnnotatorError, match="does not exist; create it first"):
        check_targets([tmp_path / "missing" / "a.csv"], False)


def test_a_file_that_appears_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    """The targets are checked again just before the move: a file made during a long export survives."""
    out = tmp_path / "labels.csv"
    check_targets([out], False)

    def slow(tmp: Path) -> None:
        tmp.write_text("new")
        out.write_text("someone else's")

    with pytest.raises(InputError, match="already exists"):
        write_files([(out, slow)], False)
    assert _names(tmp_path) == ["labels.csv"] and out.read_text() == "someone else's"
