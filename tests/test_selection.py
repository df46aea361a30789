"""--coded-by (runs on the documents the humans coded), and plan's estimates and overlap lines.

LLM runs go to a scripted OpenAI-compatible endpoint; the too-long-document path with the real local model
is in test_local_run.py.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from sqlmodel import select

from annotator.data.corpus import import_codes, import_documents
from annotator.llm.spec import resolve
from annotator.services import run as runner
from annotator.store.asked import asked_sets
from annotator.store.models import Document, Run
from tests.conftest import db_snapshot, import_parts, scripted_args, scripted_request, write
from tests.scripted_server import ScriptedServer

KEYS = [f"d{i:02d}" for i in range(20)]  # d16..d19 are test, the rest dev
ALICE = [*KEYS[0:10], "d17"]  # human
BOB = KEYS[5:15]  # human
CRITICS = KEYS[10:13]  # gold
# the spec's keys before --coded-by and --truncate existed: a plain run must keep exactly these (its hash)
PLAIN_SPEC_KEYS = {
    "codebook",
    "prompt",
    "model",
    "params",
    "logprobs",
    "schema_sha256",
    "split",
    "sample",
    "seed",
    "repeats",
    "reasks",
    "tag",
    "documents_sha256",
}


@pytest.fixture
def server():
    with ScriptedServer(label_for=lambda text: "positive") as srv:
        yield srv


def _codes(project, tmp_path: Path, coder: str, keys: list[str], kind: str = "human") -> None:
    rows = "".join(f"{k},positive\n" for k in keys)
    import_codes(project, write(tmp_path / f"{coder}.csv", "id,label\n" + rows), coder=coder, kind=kind)


@pytest.fixture
def coded(project, tmp_path: Path):
    import_parts(project, tmp_path, {k: f"word{k} film" for k in KEYS}, test_from=16)
    _codes(project, tmp_path, "alice", ALICE)
    _codes(project, tmp_path, "bob", BOB)
    _codes(project, tmp_path, "critics", CRITICS, kind="gold")
    return project


_request = functools.partial(scripted_request, concurrency=2, retries=1)


def _asked(project, run_id: int) -> set[str]:
    with project.transaction() as s:
        ids = asked_sets(s, [run_id])[run_id]
        return {k for i, k in s.exec(select(Document.id, Document.doc_key)).all() if i in ids}


def _sent(server: ScriptedServer) -> set[str]:
    return {r.text.removeprefix("word").removesuffix(" film") for r in server.requests}


def dev(keys: list[str]) -> set[str]:
    return {k for k in keys if int(k[1:]) < 16}


@pytest.mark.parametrize(
    ("coded_by", "every", "expected"),
    [
        ("alice,bob", False, dev(ALICE) | dev(BOB)),  # the union (default)
        ("bob, alice", True, dev(ALICE) & dev(BOB)),  # the intersection
        ("humans", False, dev(ALICE) | dev(BOB)),
        ("gold", False, set(CRITICS)),
        (["alice", "critics"], True, set()),  # alice and the gold coder share no document: refused
    ],
)
def test_coded_by_selects_exactly_the_coded_documents(coded, server, coded_by, every, expected) -> None:
    request = _request(server, coded_by=coded_by, coded_by_all=every)
    if not expected:
        with pytest.raises(Exception, match=r"no document of the dev split was coded by alice and critics"):
            runner.label(coded, request)
        return
    outcome = runner.label(coded, request)
    assert outcome.status == "done" and outcome.stats.ok == len(expected)
    assert _asked(coded, outcome.run_id) == expected and _sent(server) == expected
    with coded.transaction() as s:
        spec = s.get(Run, outcome.run_id).params["spec"]
    assert spec["coded_by"]["mode"] == ("all" if every else "any")


def test_sample_draws_within_the_coded_documents_and_is_seeded(coded, server) -> None:
    first = runner.label(coded, _request(server, coded_by="alice", sample=4, seed=5))
    chosen = _asked(coded, first.run_id)
    assert len(chosen) == 4 and chosen <= dev(ALICE)
    again = runner.label(coded, _request(server, coded_by="alice", sample=4, seed=5))
    assert again.run_id == first.run_id and again.stats.done == 0
    with coded.transaction() as s:
        too_many = _request(server, coded_by="alice", sample=11)
        with pytest.raises(Exception, match=r"sample=11: the dev split coded by alice has 10 documents"):
            resolve(coded, s, too_many)


def test_a_run_without_coded_by_keeps_its_spec_and_resumes(coded, server) -> None:
    plain = runner.label(coded, _request(server, sample=5, seed=1))
    with coded.transaction() as s:
        run = s.get(Run, plain.run_id)
        resolved = resolve(coded, s, _request(server, sample=5, seed=1))
    assert set(run.params["spec"]) == PLAIN_SPEC_KEYS == set(resolved.spec)
    assert resolved.spec_sha256 == run.spec_sha256
    asked_before = len(server.requests)
    resumed = runner.resume(coded, plain.run_id)
    assert resumed.run_id == plain.run_id and resumed.stats.done == 0 and len(server.requests) == asked_before
    # the same names in another order, or written twice, are the same run
    a = runner.label(coded, _request(server, coded_by="alice,bob"))
    b = runner.label(coded, _request(server, coded_by=["bob", "alice", "bob"]))
    assert a.run_id == b.run_id != plain.run_id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--coded-by", "alice,zed"], "--coded-by alice,zed: no coder named 'zed'"),
        (["--coded-by", "critics", "--split", "test"], "no document of the test split was coded by critics"),
        (["--coded-by-all"], "--coded-by-all needs --coded-by"),
        (["--coded-by", " , "], "name one or more coders"),
    ],
)
def test_bad_coded_by_exits_2_and_writes_nothing(coded, server, cli, args, message) -> None:
    before = db_snapshot(coded)
    for command in ("run", "plan"):
        result = cli(
            command,
            *scripted_args(server),
            *args,
        )
        assert result.code == 2, result
        assert message in result.err and result.err.count("error:") == 1
    if "zed" in message:  # the message lists the coders that exist
        assert "alice (human), bob (human), critics (gold)" in result.err
    assert db_snapshot(coded) == before and server.requests == []


def test_plan_shows_the_overlap_with_each_human_and_gold_coder(coded, server, cli) -> None:
    args = ["plan", "--prompt", "sentiment/zero-shot.v1", "--model", "openai-compatible/scripted"]
    args += ["--base-url", server.base_url, "--coded-by", "alice"]
    info = json.loads(cli(*args, "--json").out)
    assert info["documents"] == 10 and info["coded_by"] == {
        "names": ["alice"],
        "mode": "any",
        "coders": ["alice"],
    }
    assert info["overlap"] == [
        {"coder": "critics", "kind": "gold", "coded": 0, "of": 10},
        {"coder": "alice", "kind": "human", "coded": 10, "of": 10},
        {"coder": "bob", "kind": "human", "coded": 5, "of": 10},
    ]
    text = cli(*args).out
    assert "alice (human): 10 of 10" in text and "bob (human): 5 of 10" in text
    assert "critics (gold): 0 of 10" in text and "coded by alice" in text
    sampled = json.loads(cli(*args[:-2], "--sample", "6", "--json").out)  # a random sample: partial overlap
    assert {o["coder"]: o["of"] for o in sampled["overlap"]} == {"critics": 6, "alice": 6, "bob": 6}
    assert server.requests == []


def test_plan_estimates_come_from_a_sample_not_from_one_long_document(project, server, cli, tmp_path) -> None:
    texts = ["a" + "x" * 25_000] + [f"short review number {i}" for i in range(49)]  # the long one sorts first
    rows = "".join(f'k{i:02d},"{t}"\n' for i, t in enumerate(texts))
    import_documents(project, write(tmp_path / "docs.csv", "id,text\n" + rows))
    toml = project.root / "annotator.toml"
    toml.write_text(toml.read_text() + '\n[prices."openai-compatible/scripted"]\ninput = 1\noutput = 2\n')
    args = ["plan", "--prompt", "sentiment/zero-shot.v1", "--model", "openai-compatible/scripted"]
    args += ["--base-url", server.base_url, "--split", "all", "--json"]
    info = json.loads(cli(*args).out)
    assert info["example_document"] == "k00" and info["tokens_sampled"] == 50
    # the first document alone would predict over 6,000 tokens an answer; the mean of the sample does not
    assert info["tokens_in_max"] > 6_000 and info["tokens_in_max_document"] == "k00"
    assert info["tokens_in_per_item"] == info["tokens_in_mean"] < info["tokens_in_max"] / 10
    assert 0 < info["cost_usd"] < info["cost_usd_max"] / 5
    assert info["tokens_out_assumed"] is False and info["tokens_out_per_item"] == info["params"]["max_tokens"]
    assert info["time_basis"] == "assumed" and "assumed" in info["time_note"]
    text = cli(*args[:-1]).out
    assert "assumed" in text and "mean" in text and "max" in text
    runner.label(project, _request(server, split="all", sample=5))
    again = json.loads(cli(*args, "--tag", "again").out)
    assert again["time_basis"] == "measured" and "last 5 answers" in again["time_note"]
