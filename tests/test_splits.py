"""Dev/test splits: seeded, stratified, and a held-out test split that is never silently reassigned."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from annotator.data.corpus import import_codes, import_documents
from annotator.data.splits import assign, make_split
from annotator.errors import SplitError
from annotator.store.models import Document, SplitEvent
from tests.conftest import db_snapshot, write


def _docs(project, tmp_path: Path, n: int = 100) -> None:
    rows = "".join(f"d{i},text number {i},{'a' if i % 4 == 0 else 'b'}\n" for i in range(n))
    import_documents(project, write(tmp_path / "docs.csv", "id,text,group\n" + rows))


def _splits(project) -> dict[str, str]:
    with project.transaction() as s:
        return dict(s.execute(select(Document.doc_key, Document.split)).all())


def test_assign_is_seeded_and_stratified() -> None:
    keys = [f"k{i}" for i in range(200)]
    strata = ["x" if i < 50 else "y" for i in range(200)]
    first = assign(keys, strata, 0.3, seed=7)
    assert first == assign(keys, strata, 0.3, seed=7)
    assert first != assign(keys, strata, 0.3, seed=8)
    assert sum(first[:50]) == 15 and sum(first[50:]) == 45
    # the order the items arrive in does not matter, only their keys
    shuffled = list(reversed(range(200)))
    again = assign([keys[i] for i in shuffled], [strata[i] for i in shuffled], 0.3, seed=7)
    assert [again[shuffled.index(i)] for i in range(200)] == first


def test_split_counts_and_refuses_to_reassign_test(project, tmp_path: Path, cli) -> None:
    _docs(project, tmp_path)
    result = cli("split", "--test", "0.3", "--seed", "42", "--stratify-by", "group")
    assert result.code == 0, result
    assert "dev 70, test 30" in result.out
    splits = _splits(project)
    assert Counter(splits.values()) == {"dev": 70, "test": 30}
    groups = Counter("a" if int(k[1:]) % 4 == 0 else "b" for k, v in splits.items() if v == "test")
    assert sum(groups.values()) == 30 and groups["a"] in (7, 8)  # quotas 7.5 and 22.5: one gets the extra
    before = db_snapshot(project)
    again = cli("split", "--test", "0.5", "--seed", "1")
    assert (
        again.code == 2
        and "a test split already exists (30 documents" in again.err
        and "--force" in again.err
    )
    assert db_snapshot(project) == before
    forced = cli("split", "--test", "0.5", "--seed", "1", "--force")
    assert forced.code == 0 and "test 50" in forced.out
    with project.transaction() as s:
        events = s.execute(select(SplitEvent).order_by(SplitEvent.id)).scalars().all()
    assert [(e.seed, e.forced, e.stratify) for e in events] == [(42, False, "meta:group"), (1, True, None)]


def test_stratify_by_coder_keeps_label_balance(project, tmp_path: Path) -> None:
    _docs(project, tmp_path, n=60)
    codes = "".join(f"d{i},{'positive' if i < 20 else 'negative'}\n" for i in range(60))
    import_codes(project, write(tmp_path / "gold.csv", "id,label\n" + codes), coder="expert", kind="gold")
    make_split(project, 0.25, seed=3, stratify_by_coder="expert")
    splits = _splits(project)
    test_pos = sum(1 for k, v in splits.items() if v == "test" and int(k[1:]) < 20)
    assert test_pos == 5 and Counter(splits.values())["test"] == 15


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test": 1.5, "seed": 1}, "between 0 and 1"),
        (
            {"test": 0.3, "seed": 1, "stratify_by": "nope"},
            "no document has a metadata column 'nope' (they have: group)",
        ),
        ({"test": 0.3, "seed": 1, "stratify_by_coder": "ghost"}, "no coder 'ghost'"),
    ],
)
def test_bad_split_requests(project, tmp_path: Path, kwargs, message) -> None:
    _docs(project, tmp_path, n=10)
    with pytest.raises(SplitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_split(project, **kwargs)


def test_split_errors_name_the_parameter_as_each_caller_spells_it(project, tmp_path: Path, cli) -> None:
    """A Python caller reads its keyword arguments, the CLI user the flags (annotator.errors.arg)."""
    _docs(project, tmp_path, n=10)
    with pytest.raises(SplitError) as python:
        make_split(project, 1.5, 1)
    assert str(python.value).startswith("test=1.5: the test share must be between 0 and 1")
    with pytest.raises(SplitError) as both:
        make_split(project, 0.3, 1, stratify_by="group", stratify_by_coder="ghost")
    assert str(both.value) == "use stratify_by='group' or stratify_by_coder='ghost', not both"
    make_split(project, 0.3, 1)
    with pytest.raises(SplitError) as again:
        make_split(project, 0.3, 1)
    assert "Use new_only=True to assign documents imported since, or force=True to redo it all" in str(
        again.value
    )
    for message in (str(python.value), str(both.value), str(again.value)):
        assert "--" not in message and "\x1f" not in message

    bad = cli("split", "--test", "1.5", "--seed", "1")
    assert bad.code == 2 and "error: --test 1.5: the test share must be between 0 and 1" in bad.err
    bad = cli(
        "split", "--test", "0.3", "--seed", "1", "--stratify-by", "group", "--stratify-by-coder", "ghost"
    )
    assert bad.code == 2 and "use --stratify-by group or --stratify-by-coder ghost, not both" in bad.err
    bad = cli("split", "--test", "0.3", "--seed", "1")
    assert (
        bad.code == 2
        and "Use --new-only to assign documents imported since, or --force to redo it all" in bad.err
    )
    assert "=" not in bad.err.split("already exists")[1] and "\x1f" not in bad.err


def test_split_without_documents(project) -> None:
    with pytest.raises(SplitError, match="no documents to split"):
        make_split(project, 0.3, 1)


def test_many_small_strata_still_give_the_requested_share() -> None:
    keys = [f"k{i:03d}" for i in range(300)]
    strata = [str(i) for i in range(300)]  # every item its own stratum
    assert sum(assign(keys, strata, 0.3, seed=1)) == 90


def test_new_only_assigns_documents_imported_after_the_split(project, tmp_path: Path, cli) -> None:
    _docs(project, tmp_path, n=40)
    make_split(project, 0.25, seed=5)
    first = _splits(project)
    import_documents(
        project, write(tmp_path / "more.csv", "id,text\nn1,new one\nn2,new two\nn3,three\nn4,four\n")
    )
    result = cli("split", "--test", "0.25", "--seed", "5", "--new-only")
    assert result.code == 0 and "of the new documents" in result.out and "dev 3, test 1" in result.out
    after = _splits(project)
    assert {k: v for k, v in after.items() if k in first} == first  # the held-out split did not move
    assert all(after[k] in ("dev", "test") for k in ("n1", "n2", "n3", "n4"))
    assert cli("split", "--test", "0.25", "--seed", "5", "--new-only").code == 2  # nothing left to assign
