"""A database this process cannot write (issue 11): commands that only read work and create no file; a command
that writes is refused in one line (exit 2) naming what is not writable, before it writes anything.

The read-only condition is real where it can be: the commands run in a child process for which file permissions
bite. As a normal user that is chmod itself; as root (who ignores permissions) the child runs under `setpriv`
with CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER removed from its bounding set, so the kernel refuses
root's writes to a 0444 file or into a 0555 folder exactly as it refuses a user's. Where neither is possible
those tests skip. The in-process tests at the end pretend a file is read-only through os.access: they check
the messages and the refusal paths, not the kernel.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shlex
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from annotator.data.example import import_example
from annotator.data.splits import make_split
from annotator.project import Project
from annotator.store import db

ROOT = Path(__file__).resolve().parents[1]
_DROP = "-dac_override,-dac_read_search,-fowner"

# Runs CLI commands (and a few library calls whose CLI commands are being moved to the read-only open) in one
# child process; prints one JSON line per step: {"code", "out", "err"}.
_DRIVER = r"""
import contextlib, io, json, sys, traceback
from pathlib import Path
from annotator.cli import main

root, steps = sys.argv[1], json.loads(sys.argv[2])
for step in steps:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if step[0] == "api":
                from annotator.project import find_project
                project = find_project(Path(root))
                if step[1] == "report":
                    from annotator.report import build_report
                    build_report(project, Path(step[2]), "md")
                elif step[1] == "export":
                    from annotator.services.export import export_run
                    export_run(project, int(step[2]), Path(step[3]))
                elif step[1] == "runs":
                    from annotator.services.runs import list_runs
                    print(len(list_runs(project)))
                code = 0
            else:
                code = main(["--project", root, *step])
        except BaseException:
            traceback.print_exc()
            code = 99
    print(json.dumps({"step": step, "code": code, "out": out.getvalue(), "err": err.getvalue()}), flush=True)
"""


def _prefix() -> list[str]:
    """The command prefix under which file permissions apply to the child (skips the test where none)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file permissions cannot be made to bite")
    probe = subprocess.run([setpriv, f"--bounding-set={_DROP}", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"running as root and cannot drop capabilities: {probe.stderr.decode().strip()}")
    return [setpriv, f"--bounding-set={_DROP}"]


def _run(project: Path, *steps: list[str]) -> list[dict]:
    done = subprocess.run(
        [*_prefix(), sys.executable, "-c", _DRIVER, str(project), json.dumps(list(steps))],
        capture_output=True,
        text=True,
        cwd=project.parent,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def _baseline_run(project: Project) -> str:
    with closing(sqlite3.connect(project.root / "annotator.db")) as conn:  # closed: no -wal/-shm stays
        return str(conn.execute("SELECT max(id) FROM runs WHERE kind = 'baseline'").fetchone()[0])


def _dump(project: Project) -> str:
    """Every row of every table (closed after: no -wal/-shm stays)."""
    with closing(sqlite3.connect(project.root / "annotator.db")) as conn:
        return "\n".join(conn.iterdump())


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def coded(project: Project, cli) -> Iterator[Project]:
    """The example with human codes, a gold coder, a split and one baseline run on the test split."""
    import_example(project, n=120, seed=3, raters=3)
    make_split(project, 0.3, seed=1, stratify_by_coder="critics")
    assert cli("baseline", "tfidf").code == 0
    project.engine.dispose()
    gc.collect()  # the command's engine: its connections close, and SQLite removes the -wal and -shm
    assert _files(project.root) == {"annotator.db", "annotator.toml", "codebooks", "prompts"}
    yield project
    for path in (project.root, *project.root.iterdir()):  # let pytest clean up
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


READS = [
    ["status"],
    ["db", "current"],
    ["agreement", "--split", "dev"],
    ["validate", "--gold", "critics"],
    ["compare", "--gold", "critics"],
    ["codebook", "list"],
    ["prompt", "list"],
    ["prompt", "render", "sentiment/zero-shot.v1"],
]


def _check_reads(project: Project, results: list[dict], out: Path) -> None:
    for r in results:
        assert r["code"] == 0, r
        assert "Traceback" not in r["err"], r
    by_step = {" ".join(r["step"]): r for r in results}
    assert "documents: 120" in by_step["status"]["out"]
    # figures are computed and printed, but not stored: a note says so
    assert "not stored" in by_step["agreement --split dev"]["err"]
    assert "not stored" in by_step["validate --gold critics"]["err"]
    assert (out / "report.md").stat().st_size > 0 and (out / "labels.csv").stat().st_size > 0


def test_read_only_database_file(coded: Project, tmp_path: Path) -> None:
    """chmod 444 annotator.db in a writable folder: every read works, and no -wal/-shm is left behind (a
    read-only -shm used to break the project even after `chmod u+w annotator.db`)."""
    db_file, run = coded.root / "annotator.db", _baseline_run(coded)
    before, files = _digest(db_file), _files(coded.root)
    assert files == {"annotator.db", "annotator.toml", "codebooks", "prompts"}
    out = tmp_path / "out"
    out.mkdir()
    db_file.chmod(0o444)
    reads = _run(
        coded.root,
        *READS,
        ["api", "report", str(out / "report.md")],
        ["api", "export", run, str(out / "labels.csv")],
        ["api", "runs"],
    )
    _check_reads(coded, reads, out)
    writes = _run(
        coded.root,
        ["baseline", "lexicon"],
        ["split", "--test", "0.3", "--seed", "1", "--force"],
        ["prompt", "freeze", "sentiment/zero-shot.v1"],
        ["db", "upgrade"],
    )
    for r in writes:
        assert r["code"] == 2 and r["out"] == "", r
        assert r["err"].count("\n") == 1 and "Traceback" not in r["err"], r
        assert f"{db_file} is not writable" in r["err"] and "chmod u+w" in r["err"], r
    assert _digest(db_file) == before and _files(coded.root) == files  # nothing written, nothing created
    db_file.chmod(0o644)  # repairing the database file alone repairs the project
    after = _run(coded.root, ["baseline", "lexicon"])
    assert after[0]["code"] == 0, after


def test_read_only_project_folder(coded: Project, tmp_path: Path) -> None:
    """A folder SQLite cannot create annotator.db-wal/-shm in: reads work (immutable open); writes name the
    folder."""
    db_file, run = coded.root / "annotator.db", _baseline_run(coded)
    before, files = _digest(db_file), _files(coded.root)
    assert files == {"annotator.db", "annotator.toml", "codebooks", "prompts"}
    out = tmp_path / "out"
    out.mkdir()
    coded.root.chmod(0o555)
    reads = _run(
        coded.root,
        *READS,
        ["api", "report", str(out / "report.md")],
        ["api", "export", run, str(out / "labels.csv")],
    )
    _check_reads(coded, reads, out)
    [refused] = _run(coded.root, ["baseline", "lexicon"])
    assert refused["code"] == 2 and refused["err"].count("\n") == 1, refused
    assert f"the folder {coded.root} is not writable" in refused["err"], refused
    assert _digest(db_file) == before and _files(coded.root) == files


def _leave_a_wal(project: Project) -> Path:
    """A copy of the project whose last documents sit in annotator.db-wal, as after a crash (the copy is
    taken while a connection holds them there, unmerged)."""
    source = project.root / "annotator.db"
    conn = sqlite3.connect(source)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(
        "INSERT INTO documents (doc_key, text, text_sha256, meta, created_at) "
        "VALUES ('late', 'in the log', ?, '{}', '2026-01-01 00:00:00')",
        ("0" * 64,),
    )
    conn.commit()
    copy = project.root.parent / "crashed"
    shutil.copytree(project.root, copy)
    conn.close()
    assert (copy / "annotator.db-wal").stat().st_size > 0
    return copy


def test_a_leftover_wal_is_read_on_a_read_only_open(coded: Project) -> None:
    copy = _leave_a_wal(coded)
    files = _files(copy)
    for path in (copy / "annotator.db", copy / "annotator.db-wal", copy / "annotator.db-shm"):
        path.chmod(0o444)
    copy.chmod(0o555)
    try:
        [status] = _run(copy, ["status"])
        assert status["code"] == 0 and "documents: 121" in status["out"], status  # the log was read
        assert _files(copy) == files
        (copy / "annotator.db-shm").chmod(0o644)
        copy.chmod(0o755)
        (copy / "annotator.db-shm").unlink()  # a log without its index cannot be read without writing
        copy.chmod(0o555)
        [refused] = _run(copy, ["status"])
        assert refused["code"] == 2 and refused["err"].count("\n") == 1, refused
        assert "annotator.db-wal holds changes not yet merged" in refused["err"], refused
        assert _files(copy) == files - {"annotator.db-shm"}
    finally:
        copy.chmod(0o755)
        for path in copy.iterdir():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_a_read_only_shm_left_by_an_older_annotator_is_named(coded: Project) -> None:
    """Older versions left a 0444 annotator.db-shm beside the database: writes name it, reads still work."""
    shm = coded.root / "annotator.db-shm"
    shm.write_bytes(b"")
    shm.chmod(0o444)
    status, refused = _run(coded.root, ["status"], ["baseline", "lexicon"])
    assert status["code"] == 0, status
    assert refused["code"] == 2 and f"the file {shm} is not writable" in refused["err"], refused


def test_init_in_a_read_only_folder_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        [result] = _run(folder, ["init", str(folder / "p")])
        assert result["code"] == 2 and result["err"].count("\n") == 1, result
        assert f"error: cannot create the project in {folder / 'p'}: creating" in result["err"]
        assert "Permission denied" in result["err"] and not list(folder.iterdir())
    finally:
        folder.chmod(0o755)


# ---- in process: os.access pretends the database file is read-only -------------------------------------


@pytest.fixture
def pretend_read_only(coded: Project, monkeypatch: pytest.MonkeyPatch) -> Path:
    db_file = coded.root / "annotator.db"
    real = os.access

    def access(path, mode, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(path) == db_file and mode & os.W_OK:
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(db.os, "access", access)
    return db_file


def test_reads_open_read_only_and_store_no_figure(pretend_read_only: Path, cli, coded: Project) -> None:
    before = _dump(coded)
    result = cli("agreement", "--split", "dev")
    assert result.code == 0, result
    assert result.err.strip() == (
        f"note: {pretend_read_only} is open read-only, so these figures were not stored in it"
    )
    assert cli("status").code == 0
    assert _files(coded.root) == {"annotator.db", "annotator.toml", "codebooks", "prompts"}
    assert _dump(coded) == before


def test_writes_are_refused_in_one_line(pretend_read_only: Path, cli, coded: Project) -> None:
    before = _dump(coded)
    for args in (
        ["split", "--test", "0.3", "--seed", "1", "--force"],
        ["baseline", "lexicon"],
        ["import", "example", "--n", "10"],
    ):
        result = cli(*args)
        assert result.code == 2 and result.err.count("\n") == 1, result
        assert result.err.startswith("error: this command writes to the database, but the file ")
        assert f"chmod u+w {shlex.quote(str(pretend_read_only))}" in result.err
    assert _dump(coded) == before
