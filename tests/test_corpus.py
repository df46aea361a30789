"""Documents and human codes: every format, and every bad input named with its file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from annotator.data.corpus import import_codes, import_documents
from annotator.errors import InputError
from annotator.store.models import Annotation, Coder, Document
from tests.conftest import db_snapshot, write

pytestmark = pytest.mark.both_databases

DOCS = [
    {"doc": "d1", "body": "A gorgeous, witty film.", "year": 2001},
    {"doc": "d2", "body": "Tedious and overlong.", "year": 2002},
    {"doc": "d3", "body": "It has {{ 7*7 }} moments, some good.", "year": 2003},
]


def _csv(tmp_path: Path, name: str = "docs.csv") -> Path:
    return write(
        tmp_path / name, "doc,body,year\n" + "".join(f'{d["doc"]},"{d["body"]}",{d["year"]}\n' for d in DOCS)
    )


def _count(project, model) -> int:
    with project.transaction() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet", "xlsx"])
def test_import_docs_every_format_keeps_metadata(project, tmp_path: Path, fmt: str) -> None:
    frame = pd.DataFrame(DOCS)
    path = tmp_path / f"docs.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_excel(path, index=False)
    result = import_documents(project, path, text="body", id="doc")
    assert (result.added, result.unchanged) == (3, 0)
    with project.transaction() as s:
        docs = {d.doc_key: d for d in s.execute(select(Document)).scalars()}
    assert docs["d3"].text == "It has {{ 7*7 }} moments, some good."
    assert str(docs["d2"].meta["year"]) == "2002"
    assert len(docs["d1"].text_sha256) == 64


def test_reimport_adds_nothing_and_changed_text_is_refused(project, tmp_path: Path, cli) -> None:
    path = _csv(tmp_path)
    assert import_documents(project, path, text="body", id="doc").added == 3
    again = import_documents(project, path, text="body", id="doc")
    assert (again.added, again.unchanged) == (0, 3)
    before = db_snapshot(project)
    changed = write(tmp_path / "changed.csv", 'doc,body\nd4,"new one"\nd2,"Tedious, overlong."\n')
    result = cli("import", "docs", changed, "--text", "body", "--id", "doc")
    assert result.code == 2
    assert "'d2' (changed.csv:3)" in result.err and "give changed texts new ids" in result.err
    assert db_snapshot(project) == before  # d4 was not written either


def test_bad_document_files(project, tmp_path: Path, cli) -> None:
    before = db_snapshot(project)
    cases = {
        "missing file": (["import", "docs", tmp_path / "nope.csv"], "file not found"),
        "missing column": (
            ["import", "docs", _csv(tmp_path), "--text", "content", "--id", "doc"],
            "no column 'content' (it has 'doc', 'body', 'year'); name the right one with --text",
        ),
        "duplicate ids": (
            ["import", "docs", write(tmp_path / "dup.csv", "id,text\na,x\nb,y\na,z\n")],
            "duplicate document ids in the file: 'a' at dup.csv:2 and dup.csv:4",
        ),
        "empty text": (
            ["import", "docs", write(tmp_path / "empty.csv", "id,text\na,x\nb,  \n")],
            "empty text at empty.csv:3",
        ),
        "bad encoding": (
            ["import", "docs", tmp_path / "latin.csv"],
            "latin.csv:3: not valid utf-8",
        ),
        "broken jsonl": (
            ["import", "docs", write(tmp_path / "b.jsonl", '{"id": 1, "text": "ok"}\n{"id": 2, text}\n')],
            "b.jsonl:2: not valid JSON",
        ),
        "unknown format": (["import", "docs", write(tmp_path / "x.doc", "hi")], "cannot tell the format"),
    }
    (tmp_path / "latin.csv").write_bytes("id,text\na,fine\nb,caf\xe9 cr\xe8me\n".encode("latin-1"))
    for name, (args, message) in cases.items():
        result = cli(*args)
        assert result.code == 2, name
        assert message in result.err, (name, result.err)
        assert result.err.count("\n") == 1 and "Traceback" not in result.err, name
    assert db_snapshot(project) == before
    # the same latin-1 file imports when its encoding is named
    assert cli("import", "docs", tmp_path / "latin.csv", "--encoding", "latin-1").code == 0
    with project.transaction() as s:
        assert s.execute(select(Document.text).where(Document.doc_key == "b")).scalar_one() == "café crème"


def test_multiline_csv_field_keeps_true_line_numbers(project, tmp_path: Path) -> None:
    path = write(tmp_path / "ml.csv", 'id,text\na,"line one\nline two"\nb,""\n')
    with pytest.raises(InputError, match=r"empty text at ml\.csv:4"):
        import_documents(project, path)


def _codes_project(project, tmp_path: Path) -> None:
    import_documents(project, _csv(tmp_path), text="body", id="doc")


def test_import_codes_normalises_labels_and_reimport_is_idempotent(project, tmp_path: Path, cli) -> None:
    _codes_project(project, tmp_path)
    path = write(tmp_path / "alice.csv", "doc,code\nd1,Positive\nd2, negative \nd3,neutral\n")
    result = cli("import", "codes", path, "--coder", "alice", "--label", "code", "--id", "doc")
    assert result.code == 0, result
    assert "alice 3" in result.out
    with project.transaction() as s:
        labels = dict(s.execute(select(Document.doc_key, Annotation.label).join(Annotation)).all())
        coder = s.execute(select(Coder).where(Coder.name == "alice")).scalar_one()
    assert labels == {"d1": "positive", "d2": "negative", "d3": "neutral"}
    assert coder.kind == "human"
    again = import_codes(project, path, coder="alice", label="code", id="doc")
    assert again.coders == {"alice": 0} and again.unchanged == 3
    assert _count(project, Annotation) == 3


def test_unknown_labels_are_listed_and_nothing_is_imported(project, tmp_path: Path, cli) -> None:
    _codes_project(project, tmp_path)
    before = db_snapshot(project)
    path = write(tmp_path / "bob.csv", "id,label\nd1,positive\nd2,meh\nd3,meh\n")
    result = cli("import", "codes", path, "--coder", "bob")
    assert result.code == 2
    assert "labels not in codebook sentiment@1: 'meh' (2x, first at bob.csv:3)" in result.err
    assert "allowed: negative, positive, neutral" in result.err
    assert db_snapshot(project) == before


def test_long_format_and_gold(project, tmp_path: Path) -> None:
    _codes_project(project, tmp_path)
    rows = [
        {"id": d, "coder": c, "label": lab}
        for d, c, lab in [
            ("d1", "ann", "positive"),
            ("d2", "ann", "negative"),
            ("d1", "ben", "positive"),
            ("d3", "ben", ""),
        ]
    ]
    path = tmp_path / "long.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    result = import_codes(project, path, coder_column="coder")
    assert result.coders == {"ann": 2, "ben": 1} and result.blank == 1
    gold = write(tmp_path / "gold.csv", "id,label\nd1,positive\n")
    import_codes(project, gold, coder="expert", kind="gold")
    with pytest.raises(InputError, match="already exists as a gold coder"):
        import_codes(project, gold, coder="expert")


def test_conflicting_recode_and_unknown_documents_are_refused(project, tmp_path: Path) -> None:
    _codes_project(project, tmp_path)
    import_codes(project, write(tmp_path / "a.csv", "id,label\nd1,positive\n"), coder="alice")
    with pytest.raises(
        InputError, match=r"already coded these documents differently: 'd1' \(b.csv:2: negative"
    ):
        import_codes(project, write(tmp_path / "b.csv", "id,label\nd1,negative\n"), coder="alice")
    with pytest.raises(InputError, match=r"not imported: 'zz' \(c.csv:2\)"):
        import_codes(project, write(tmp_path / "c.csv", "id,label\nzz,negative\n"), coder="alice")
    with pytest.raises(InputError, match="coder='NAME'"):
        import_codes(project, tmp_path / "a.csv")


def test_spreadsheet_and_parquet_cells_are_cleaned(project, tmp_path: Path, cli) -> None:
    import datetime as dt

    frame = pd.DataFrame(
        {
            "id": ["e1", None, "e2"],
            "text": ["ok", None, "fine"],
            "when": [dt.datetime(2020, 1, 1), None, dt.datetime(2021, 5, 6)],
        }
    )
    frame.to_excel(tmp_path / "s.xlsx", index=False)  # the middle row is blank: skipped
    assert import_documents(project, tmp_path / "s.xlsx").added == 2
    with project.transaction() as s:
        meta = s.execute(select(Document.meta).where(Document.doc_key == "e1")).scalar_one()
    assert meta == {"when": "2020-01-01T00:00:00"}
    before = db_snapshot(project)
    pd.DataFrame({"id": ["p1", "p2"], "text": [None, "ok"], "tags": [["a"], ["b", "c"]]}).to_parquet(
        tmp_path / "p.parquet"
    )
    result = cli("import", "docs", tmp_path / "p.parquet")
    assert result.code == 2 and "empty text at p.parquet row 1" in result.err
    assert db_snapshot(project) == before


def test_jsonl_line_separators_and_long_csv_fields(project, tmp_path: Path) -> None:
    path = tmp_path / "sep.jsonl"
    path.write_text(
        json.dumps({"id": "j1", "text": "one\u2028two"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    assert import_documents(project, path).added == 1
    speech = "word " * 40_000  # 200,000 characters: over csv's default field limit
    assert import_documents(project, write(tmp_path / "long.csv", f'id,text\nlong,"{speech}"\n')).added == 1


def test_unknown_labels_of_every_coder_are_listed_at_once(project, tmp_path: Path) -> None:
    _codes_project(project, tmp_path)
    path = write(tmp_path / "long.csv", "id,coder,label\nd1,ann,meh\nd1,ben,bof\n")
    with pytest.raises(
        InputError, match=r"'meh' \(1x, first at long.csv:2\), 'bof' \(1x, first at long.csv:3\)"
    ):
        import_codes(project, path, coder_column="coder")


def _big_csv(
    tmp_path: Path, n: int, name: str = "big.csv", prefix: str = "b", bad: dict[int, str] | None = None
):
    """n rows b-0..b-(n-1), row k on line k + 2; ``bad`` replaces whole rows (without their newline)."""
    bad = bad or {}
    rows = "".join(bad.get(k, f"{prefix}-{k},text number {k} of a long file") + "\n" for k in range(n))
    return write(tmp_path / name, "id,text\n" + rows)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {11_990: "b-3,a second b-3"},
            "duplicate document ids in the file: 'b-3' at big.csv:5 and big.csv:11992",
        ),
        ({11_990: "b-11990,  "}, "empty text at big.csv:11992"),
        ({11_995: "b-11995,nul \x00 here"}, "text with a NUL character at big.csv:11997"),
        ({11_998: 'b-11998,"never closed'}, "big.csv:12000: a quoted field opens at line 12000"),
        ({11_999: ",no id"}, "big.csv:12001: empty id in column 'id'"),
    ],
)
def test_a_bad_row_near_the_end_of_a_long_file_writes_nothing(
    project, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch, bad: dict[int, str], message: str
) -> None:
    """12,000 rows are written in chunks (5,000 at a time) inside one transaction: chunks written before the
    bad row are rolled back with it."""
    import annotator.data.corpus as corpus

    chunks: list[int] = []
    real_insert = corpus.bulk_insert

    def counting_insert(session, model, rows, *args, **kwargs):
        chunks.append(len(rows))
        real_insert(session, model, rows, *args, **kwargs)

    monkeypatch.setattr(corpus, "bulk_insert", counting_insert)
    before = db_snapshot(project)
    result = cli("import", "docs", _big_csv(tmp_path, 12_000, bad=bad))
    assert result.code == 2, result
    assert message in result.err and result.err.count("\n") == 1
    assert db_snapshot(project) == before
    assert _count(project, Document) == 0
    assert chunks[:2] == [5_000, 5_000]  # written before the bad row was read, then rolled back


def test_long_file_streams_and_changed_texts_anywhere_are_refused(project, tmp_path: Path, cli) -> None:
    first = _big_csv(tmp_path, 12_000)
    assert import_documents(project, first).added == 12_000
    again = import_documents(project, first)
    assert (again.added, again.unchanged, again.rows, again.lines) == (0, 12_000, 12_000, 12_001)
    before = db_snapshot(project)
    changed = {k: f"b-{k},an edited text {k}" for k in (2, 11_999)}
    more = _big_csv(tmp_path, 12_000, name="more.csv", bad=changed)
    with open(more, "a", encoding="utf-8") as fh:
        fh.writelines(f"new-{k},a new text {k}\n" for k in range(6_000))
    result = cli("import", "docs", more)
    assert result.code == 2, result
    assert (
        "already imported with a different text: 'b-2' (more.csv:4), 'b-11999' (more.csv:12001)" in result.err
    )
    assert db_snapshot(project) == before  # the 6,000 new documents were not written either
    with project.transaction() as s:
        text = s.execute(select(Document.text).where(Document.doc_key == "b-11999")).scalar_one()
    assert text == "text number 11999 of a long file"


def test_encoding_error_near_the_end_names_its_line_and_writes_nothing(project, tmp_path: Path) -> None:
    path = _big_csv(tmp_path, 12_000)
    data = path.read_bytes()
    cut = data.index(b"b-11500,")
    path.write_bytes(data[:cut] + b"b-11500,caf\xe9 " + data[cut + len(b"b-11500,") :])
    with pytest.raises(InputError, match=r"big\.csv:11502: not valid utf-8 \(byte 0xe9 at offset "):
        import_documents(project, path)
    assert _count(project, Document) == 0
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfid,text\na,ok\nb,caf\xe9\n")
    with pytest.raises(InputError, match=r"bom\.csv:3: not valid utf-8 \(byte 0xe9 at offset 21\)"):
        import_documents(project, tmp_path / "bom.csv")


@pytest.mark.slow
@pytest.mark.sqlite_only  # watches the SQLite write-ahead log grow
def test_a_killed_import_leaves_nothing(project, tmp_path: Path) -> None:
    """kill -9 while the chunks are being written (the database's write-ahead log growing): nothing stays."""
    import os
    import signal
    import subprocess
    import sys
    import time

    path = _big_csv(tmp_path, 400_000)
    wal = Path(project.database_url.removeprefix("sqlite:///") + "-wal")
    start = wal.stat().st_size if wal.exists() else 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "annotator", "--project", str(project.root), "import", "docs", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while proc.poll() is None and (wal.stat().st_size if wal.exists() else 0) < start + 4_000_000:
            time.sleep(0.02)
        assert proc.poll() is None, "the import ended before it could be killed: make the file longer"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _count(project, Document) == 0
