"""A fully cached re-run: the same rows as the run that paid for the answers, without a request.

What makes it fast must not change what it stores: a prompt rendered once per run (a skeleton filled with
each document) is the prompt a full render gives; the cache keys computed in parts are `cache_key`'s; the
cache read through SQL Core returns what the ORM returned; an answer that was invalid stays invalid; and a
run whose every answer is cached never loads the HTTP client.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from annotator.codebook import Codebook
from annotator.errors import TemplateError
from annotator.llm import cache
from annotator.prompts import DocumentInput, PromptTemplate, load_prompt, parse_prompt, parse_ref
from annotator.services import run as runner
from annotator.store.registry import project_codebook
from tests.conftest import film_texts, import_docs, run_annotations, scripted_request, stays_invalid
from tests.scripted_server import ScriptedServer

pytestmark = pytest.mark.both_databases

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
INVALID = "bravo"  # this document's answer is not a codebook label, first time and re-asked
STORED = ("label", "probability", "rationale", "status", "raw", "error")
TOKENS = ("tokens_in", "tokens_out")


def _label_for(text: str) -> str:
    return "bogus" if INVALID in text else "negative" if "awful" in text else "positive"


@pytest.fixture
def docs(project, tmp_path: Path) -> dict[str, str]:
    return import_docs(project, tmp_path, film_texts(WORDS))


@pytest.fixture
def server():
    with ScriptedServer(label_for=_label_for, rule=stays_invalid()) as srv:
        yield srv


_request = functools.partial(scripted_request, split="dev", concurrency=4, retries=1)


def _rows(project, run_id: int, fields: tuple[str, ...] = STORED) -> dict[str, tuple[object, ...]]:
    return {k: tuple(getattr(a, f) for f in fields) for k, a in run_annotations(project, run_id).items()}


@pytest.mark.parametrize("reasks", [1, 0])
def test_a_cached_rerun_stores_the_same_rows_and_asks_nothing(project, docs, server, reasks: int) -> None:
    first = runner.label(project, _request(server, reasks=reasks))
    asked = len(server.requests)
    assert asked == len(WORDS) + reasks  # the invalid answer was re-asked (and stayed invalid)
    again = runner.label(project, _request(server, reasks=reasks, tag="again"))
    assert again.run_id != first.run_id and again.status == "done"
    assert len(server.requests) == asked  # nothing asked twice
    assert again.stats.requests == 0 and again.stats.cached == len(WORDS)
    before, after = _rows(project, first.run_id), _rows(project, again.run_id)
    assert after == before
    invalid = [k for k, text in docs.items() if INVALID in text]
    # and the token counts of every answer given at the first ask (a re-asked answer's row counts, as it
    # always did, the tokens of the asks this run made for it: here the cached re-ask's alone)
    tokens = _rows(project, first.run_id, TOKENS), _rows(project, again.run_id, TOKENS)
    assert {k: v for k, v in tokens[1].items() if k not in invalid or not reasks} == {
        k: v for k, v in tokens[0].items() if k not in invalid or not reasks
    }
    assert {k for k, row in after.items() if row[3] == "invalid"} == set(invalid)
    stored = run_annotations(project, again.run_id)
    assert stored[invalid[0]].raw == '{"label": "bogus"}' and "answer schema" in stored[invalid[0]].error
    assert all(a.cached and a.latency_ms is None for a in stored.values())
    # answered at the first ask: no attempt; re-asked (from the cache): one, as a re-asked answer always counts
    assert {k: a.attempts for k, a in stored.items()} == {k: int(k in invalid and reasks > 0) for k in stored}
    assert stored["d00"].label == "negative" and stored["d02"].label == "positive"
    assert stored["d02"].probability == before["d02"][1] and before["d02"][1] is not None
    assert (again.run.n_ok, again.run.n_invalid, again.run.n_error) == (len(WORDS) - 1, 1, 0)


def test_a_cached_answer_that_does_not_validate_is_asked_again_when_the_reask_is_not_cached(
    project, docs, server
) -> None:
    """A first run without re-asks cached only the invalid first answer: a run that re-asks takes that answer
    from the cache and pays only for the re-ask, which is again invalid."""
    runner.label(project, _request(server, reasks=0))
    asked = len(server.requests)
    again = runner.label(project, _request(server, reasks=1, tag="reask"))
    new = server.requests[asked:]
    assert len(new) == 1 and "That answer is not valid" in new[0].body["messages"][-1]["content"]
    assert again.stats.requests == 1 and again.run.n_invalid == 1


def test_a_cached_rerun_does_not_load_the_http_client(project, docs, server) -> None:
    """Every answer cached: neither the transport module nor its HTTP client is imported (~90 ms)."""
    runner.label(project, _request(server))
    code = (
        "import json, sys\n"
        "from annotator.project import find_project\n"
        "from annotator.services import run as runner\n"
        "from annotator.llm.spec import RunRequest\n"
        f"out = runner.label(find_project(None), RunRequest(prompt='sentiment/zero-shot.v1', "
        f"model='openai-compatible/scripted', base_url={server.base_url!r}, split='dev', concurrency=4, "
        "retries=1, tag='child'))\n"
        "print(json.dumps([out.stats.cached, out.stats.requests, "
        "[m for m in ('annotator.llm.transport', 'aiohttp', 'openai') if m in sys.modules]]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=project.root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    cached, requests, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert (cached, requests, loaded) == (len(WORDS), 0, [])


def test_a_rerun_with_a_new_document_asks_only_for_it(project, docs, server, tmp_path: Path) -> None:
    runner.label(project, _request(server, split="all"))
    asked = len(server.requests)
    import_docs(project, tmp_path, {"d99": "zulu film, lovely acting"})
    again = runner.label(project, _request(server, split="all", tag="more"))
    assert again.stats.cached == len(WORDS) and again.stats.requests == 1
    assert [r.text for r in server.requests[asked:]] == ["zulu film, lovely acting"]


# -- the pieces, against the slow path they replace ----------------------------------------------------------

TEMPLATES = {
    "strip": "[system]\nS {{ labels|join(',') }}\n[user]\n{{ document.text }}\n",
    "idtext": "[system]\nid {{ document['id'] }}\n[user]\n{{ document.text }} / {{ document.id }}\n",
    "loop": "[user]\n{% for e in labels %}{{ document.text }}-{{ e }}\n{% endfor %}",
    "head": "{{ document.text }}\n[user]\nX\n",
    "empty": "[system]\n{{ document.text }}\n[user]\nq {{ document.id }}\n",
    "braces": '[system]\nJSON: {"label": "x"} {0} {{ \'{1}\' }} }}\n[user]\n{ {{ document.text }} } {0}{1}\n',
    "meta": "[user]\n{% if document.meta.target is defined %}T={{ document.meta.target }}{% endif %}\n"
    "{{ document.meta['n'] }} {{ document.text }}\n",
    "filter": "[user]\n{{ document.text | upper }}\n",
    "macro": "{% macro m() %}{{ document.text }}{% endmacro %}\n[user]\n{{ m() | upper }}\n",
    "setblock": "{% set x %}{{ document.text }}{% endset %}\n[user]\n{{ x | length }}\n",
    "autoescape": "[user]\n{% autoescape true %}{{ document.text }}{% endautoescape %}\n",
    "shadow": "[user]\n{% set document = {'text': 'x'} %}{{ document.text }}\n",
    "metaloop": "[user]\n{% for k in document.meta %}{{ k }}{% endfor %}{{ document.text }}\n",
    "missing": "[user]\n{{ document.meta.target }} {{ document.text }}\n",
}
# templates that must be rendered in full for every document: the skeleton could not reproduce them
FULL = {"filter", "macro", "setblock", "autoescape", "shadow", "metaloop"}
TEXTS = [
    "plain",
    "  padded  \n",
    "",
    "   ",
    "{{ x }} [user] {0}{1}{",
    "\x00nonce:user:3\x00",
    "ünï\n\n",
    "a" * 500,
]
METAS = [
    {},
    {"target": "x", "n": 1},
    {"target": None, "n": 1.0},
    {"target": [1, 2], "n": True},
    {"n": "1"},
    {"target": {"b": 1, "a": 2}, "n": 0},
    {"target": {"a": 2, "b": 1}, "n": -0.0},
    {"target": Decimal("1.50"), "n": 1},  # not JSON data: rendered in full
]


def _outcome(template: PromptTemplate, codebook: Codebook, doc: DocumentInput) -> tuple[str, object]:
    try:
        return "ok", template.render(codebook, doc)
    except TemplateError as exc:
        return "error", str(exc)


def _templates(project) -> list[PromptTemplate]:
    shipped = [
        load_prompt(project.prompts_dir, r)
        for r in ("sentiment/zero-shot.v1", "sentiment/zero-shot.v2", "sentiment/few-shot.v1")
    ]
    made = [
        parse_prompt(body, parse_ref(f"sentiment/{name}.v1"), f"{name}.jinja")
        for name, body in TEMPLATES.items()
    ]
    return shipped + made


@pytest.mark.sqlite_only
def test_a_prompt_rendered_once_per_run_is_the_prompt_a_full_render_gives(project) -> None:
    codebook = project_codebook(project, "sentiment")
    for template in _templates(project):
        name = template.ref.name
        assert (template._plan is None) == (name in FULL), name
        full = dataclasses.replace(template, _plan=None)
        for text in TEXTS:
            for meta in METAS:
                for doc_id in ("d1", "", " x "):
                    doc = DocumentInput(doc_id, text, meta)
                    assert _outcome(template, codebook, doc) == _outcome(full, codebook, doc), (name, doc)


@pytest.mark.sqlite_only
def test_a_template_reading_metadata_gets_a_skeleton_per_value(project) -> None:
    codebook = project_codebook(project, "sentiment")
    template = parse_prompt(TEMPLATES["meta"], parse_ref("sentiment/meta.v1"), "meta.jinja")
    assert template._plan is not None and template._plan.meta == ("n", "target")
    for i in range(30):
        template.render(codebook, DocumentInput(f"d{i}", "t", {"target": ["a", "b"][i % 2], "n": 1, "x": i}))
    assert len(template._skeletons) == 2  # "x" is not read: it makes no skeleton of its own


@pytest.mark.sqlite_only
def test_cache_keys_in_parts_are_the_keys_of_cache_key() -> None:
    model = {"provider": "openai-compatible", "model": "m", "base_url": "http://h:1/v1"}
    keys = cache.CacheKeys(model, "abc123", True)
    params0 = {"temperature": 0, "max_tokens": 64, "seed": 42, "stop": ["\n", "ü"]}
    params1 = {**params0, "seed": 43}
    messages = [
        [{"role": "system", "content": 'Sys ü "q" \\ \x01 \u2028'}, {"role": "user", "content": "doc 1"}],
        [{"role": "system", "content": 'Sys ü "q" \\ \x01 \u2028'}, {"role": "user", "content": "doc 2"}],
        [{"content": "only user", "role": "user"}],
        [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "again"},
        ],
        [{"role": "user", "content": "extra", "name": "n"}],
        [{"role": "user", "content": None}],
        [],
    ]
    for repeat, params in ((0, params0), (1, params1), (0, params0), (1, {**params0, "seed": 43})):
        for m in messages:
            assert keys.key(m, params, repeat) == cache.cache_key(model, m, params, "abc123", True, repeat)


def test_the_cache_read_through_sql_core_is_what_the_orm_reads(project) -> None:
    from annotator.store.cache_rows import cached_rows
    from annotator.store.db import insert_ignore
    from annotator.store.models import utcnow

    rows = [
        {
            "key": "k1",
            "response": '{"label": "positive"}',
            "logprobs": None,
            "usage": {"prompt_tokens": 3},
            "model": "m",
            "created_at": utcnow(),
        },
        {
            "key": "k2",
            "response": "x",
            "logprobs": [{"token": "x", "logprob": -0.1}],
            "usage": {"prompt_tokens": 3},
            "model": None,
            "created_at": utcnow(),
        },
        {"key": "k3", "response": "", "logprobs": [], "usage": {}, "model": "m", "created_at": utcnow()},
    ]
    with project.transaction() as session:
        insert_ignore(session, cache.LLMCache, rows, ["key"])
    keys = ["k1", "k2", "k3", "absent"]
    with project.transaction() as session:
        orm = cache.lookup(session, keys)
        core = cached_rows(session.connection(), keys)
    assert set(core) == set(orm) == {"k1", "k2", "k3"}
    for key, row in orm.items():
        assert tuple(core[key]) == (row.response, row.logprobs, row.usage, row.model)
        assert cache.CachedCompletion.of(core[key]) == cache.CachedCompletion.of(row)
