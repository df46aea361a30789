"""A CSV whose quoting would merge rows into one text is refused, naming its lines; real multi-line texts pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from annotator.data.corpus import import_codes, import_documents
from annotator.data.tables import MAX_LINE_BREAKS, read_table
from annotator.errors import InputError
from annotator.store.models import Document
from tests.conftest import db_snapshot, write


def _documents(project) -> list[tuple[str, str]]:
    with project.transaction() as s:
        return list(s.execute(select(Document.doc_key, Document.text).order_by(Document.id)).all())


def _count(project) -> int:
    with project.transaction() as s:
        return s.execute(select(func.count()).select_from(Document)).scalar_one()


def _rows(n: int, bad: int | None = None, bad_text: str = "") -> str:
    """A CSV of n rows s-1..s-n (row s-k on line k + 1); row ``bad`` gets ``bad_text`` as its text."""
    lines = ["id,text"]
    for k in range(1, n + 1):
        lines.append(f"s-{k},{bad_text}" if k == bad else f"s-{k},a short review number {k}")
    return "\n".join(lines) + "\n"


def test_unclosed_quote_is_refused_naming_where_it_opens_and_where_the_file_ends(
    project, tmp_path: Path, cli
) -> None:
    path = write(tmp_path / "docs.csv", _rows(1000, bad=500, bad_text='"oops a stray opening quote'))
    before = db_snapshot(project)
    result = cli("import", "docs", path)
    assert result.code == 2, result
    assert "docs.csv:501: a quoted field opens at line 501 and is never closed" in result.err
    assert "the file ends at line 1001 inside it" in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert _count(project) == 0 and db_snapshot(project) == before
    # --allow-multiline accepts long texts, never a quote that does not close
    assert cli("import", "docs", path, "--allow-multiline").code == 2
    assert _count(project) == 0


@pytest.mark.parametrize(
    ("content", "opened", "last"),
    [
        ('id,text\na,fine\nb,"no newline at the end', 3, 3),  # the last line, without a newline
        ('id,text\r\na,fine\r\nb,"windows\r\nline ends\r\n', 3, 4),
        ('id,text\na,fine\nb,"', 3, 3),  # a lone quote as the file's last character
        ('id,"text\na,fine\n', 1, 2),  # in the header
        ('id,note,text\na,"two\nlines",fine\nb,x,"open\nc,y,z\n', 4, 5),  # after a closed multi-line field
    ],
)
def test_unclosed_quote_variants(tmp_path: Path, content: str, opened: int, last: int) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(content.encode())
    with pytest.raises(InputError, match=rf"f\.csv:{opened}: .* never closed: the file ends at line {last} "):
        read_table(path)


def test_tsv_unclosed_quote(tmp_path: Path) -> None:
    path = write(tmp_path / "f.tsv", 'id\ttext\na\t"quoted start\nb\tsecond\n')
    with pytest.raises(InputError, match=r"f\.tsv:2: a quoted field opens at line 2 .* ends at line 3"):
        read_table(path)


def test_multiline_text_under_the_threshold_imports(project, tmp_path: Path, cli) -> None:
    body = 'First paragraph, with a comma.\n\nSecond paragraph said ""more"".\nThird.'
    path = write(tmp_path / "ml.csv", f'id,text\na,"{body}"\nb,plain\n')
    result = cli("import", "docs", path)
    assert result.code == 0, result
    assert "2 documents added" in result.out
    assert (
        "line breaks inside the text of 1 rows (the first at ml.csv:2): 6 lines read as 2 rows" in result.out
    )
    assert _documents(project) == [("a", body.replace('""', '"')), ("b", "plain")]


def test_too_many_line_breaks_need_allow_multiline(project, tmp_path: Path, cli) -> None:
    lines = MAX_LINE_BREAKS + 5
    body = "\n".join(f"paragraph {k}" for k in range(lines + 1))
    path = write(tmp_path / "speech.csv", f'id,text\nintro,hello\nspeech,"{body}"\nend,bye\n')
    before = db_snapshot(project)
    result = cli("import", "docs", path)
    assert result.code == 2, result
    assert f"speech.csv:3: the row that starts here runs to line {3 + lines}" in result.err
    assert f"holds {lines} line breaks (more than {MAX_LINE_BREAKS} are refused" in result.err
    assert "--allow-multiline" in result.err and result.err.count("\n") == 1
    assert db_snapshot(project) == before
    result = cli("import", "docs", path, "--allow-multiline")
    assert result.code == 0, result
    assert dict(_documents(project))["speech"] == body


def test_stray_quote_closed_by_a_later_quote_is_caught(project, tmp_path: Path) -> None:
    """The quote opened at s-50 closes at s-100's quoted text: a lenient reader makes 50 rows one text."""
    rows = _rows(200, bad=50, bad_text='"stray').replace("s-100,a short", 's-100,"quoted" a short')
    path = write(tmp_path / "docs.csv", rows)
    with pytest.raises(
        InputError, match=r"docs\.csv:51: a quoted text in the row that starts at line 51 closes at line 101"
    ):
        import_documents(project, path, allow_multiline=True)  # malformed quoting, whatever the option
    assert _count(project) == 0


def test_a_stray_quote_two_rows_long_is_refused_too(project, tmp_path: Path, cli) -> None:
    """Below every size threshold: the closing quote followed by text is what gives it away."""
    path = write(tmp_path / "d.csv", 'id,text\na1,"good film"\na2,"bad film\na3,"ok film"\n')
    before = db_snapshot(project)
    result = cli("import", "docs", path)
    assert (
        result.code == 2
        and "d.csv:3: a quoted text in the row that starts at line 3 closes at line 4" in result.err
    )
    assert db_snapshot(project) == before


def test_long_multiline_row_among_short_rows_needs_allow_multiline(project, tmp_path: Path) -> None:
    long_text = ("word " * 2400).strip() + "\nand a second line"  # ~12,000 characters, one line break
    rows = "".join(f"r{k},short text {k}\n" for k in range(200))
    path = write(tmp_path / "mixed.csv", f'id,text\n{rows}long,"{long_text}"\n')
    with pytest.raises(
        InputError, match=r"mixed\.csv:202: the row that starts here runs to line 203 and is "
    ):
        import_documents(project, path)
    assert _count(project) == 0
    with pytest.raises(InputError, match="times the file's median row"):
        import_documents(project, path)
    result = import_documents(project, path, allow_multiline=True)
    assert (result.added, result.multiline, result.first_multiline) == (201, 1, "mixed.csv:202")
    # one long text on one line is no sign of a stray quote: it imports without the option
    single = write(tmp_path / "single.csv", f"id,text\n{rows}long2,{'word ' * 2400}\n")
    assert import_documents(project, single).added == 1


def test_long_multiline_texts_are_fine_when_every_row_is_long(project, tmp_path: Path) -> None:
    """A file of speeches: each long, with a few paragraphs; the median row is long too."""
    speech = "\n".join(("sentence " * 300).strip() for _ in range(4))  # ~10,800 characters, 3 breaks
    rows = "".join(f'sp{k},"{speech}"\n' for k in range(5))
    result = import_documents(project, write(tmp_path / "speeches.csv", f"id,text\n{rows}"))
    assert (result.added, result.multiline, result.lines) == (5, 5, 21)


def test_codes_file_with_a_stray_quote_is_refused(project, tmp_path: Path, cli) -> None:
    import_documents(project, write(tmp_path / "docs.csv", "id,text\nd1,one\nd2,two\nd3,three\n"))
    path = write(tmp_path / "alice.csv", 'id,label,note\nd1,positive,"unsure\nd2,negative,\nd3,neutral,\n')
    result = cli("import", "codes", path, "--coder", "alice")
    assert result.code == 2, result
    assert "alice.csv:2: a quoted field opens at line 2 and is never closed" in result.err
    notes = write(tmp_path / "bob.csv", 'id,label,note\nd1,positive,"a note\non two lines"\nd2,negative,\n')
    assert import_codes(project, notes, coder="bob").coders == {"bob": 2}
    many = "\n".join(["x"] * (MAX_LINE_BREAKS + 2))
    carol = write(tmp_path / "carol.csv", f'id,label,note\nd1,positive,"{many}"\n')
    assert cli("import", "codes", carol, "--coder", "carol").code == 2
    result = cli("import", "codes", carol, "--coder", "carol", "--allow-multiline")
    assert result.code == 0, result


def test_text_after_a_closing_quote_on_one_line_says_so(project, tmp_path: Path, cli) -> None:
    path = write(tmp_path / "sp.csv", 'id,text\na1,"good film" \na2,"ok"\n')
    result = cli("import", "docs", path)
    assert result.code == 2 and "sp.csv:2: text after a closing quote on line 2" in result.err
    assert "swallows" not in result.err and _count(project) == 0
