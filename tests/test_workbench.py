"""The coding workbench: accounts, assignment, coding and the dashboard through the services and the CLI, and
the server over plain HTTP (a real uvicorn server on a loopback port): sessions, CSRF, roles, blind coding,
escaping, revocation. The browser test is tests/test_workbench_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from annotator.errors import InputError
from annotator.project import Project
from annotator.services.workbench import accounts, coding
from annotator.services.workbench.assign import assign
from annotator.services.workbench.dashboard import dashboard
from annotator.store.models import Assignment
from tests.conftest import coder_codes, db_snapshot, import_docs, signed_in_as
from tests.workbench_server import csrf, current_document, serving, signed_in

pytestmark = pytest.mark.both_databases

SCRIPT = '<script>document.title="PWNED"</script><img src=x onerror="alert(1)">'


@pytest.fixture
def docs(project: Project, tmp_path: Path) -> dict[str, str]:
    texts = {f"d{i:03d}": f"text number {i} about a film" for i in range(120)}
    texts["d000"] = SCRIPT.replace('"', "'")
    return import_docs(project, tmp_path, texts, columns={"year": [2019 + i % 3 for i in range(120)]})


# -- accounts ---------------------------------------------------------------------------------------------


def test_a_token_is_stored_only_as_its_hash_and_revoking_closes_the_account(project: Project, docs) -> None:
    made = accounts.add_coder(project, "alice", "lead")
    assert accounts.sign_in(project, made.token) is not None
    dump = db_snapshot(project)
    assert made.token not in dump
    with pytest.raises(InputError, match="already has an account"):
        accounts.add_coder(project, "alice")
    accounts.revoke_coder(project, "alice")
    assert accounts.sign_in(project, made.token) is None
    fresh = accounts.new_link(project, "alice")
    assert accounts.sign_in(project, made.token) is None  # the old link stays dead
    assert accounts.sign_in(project, fresh.token) is not None  # the new one opens the account again


def test_bad_names_and_roles_name_the_value_in_python_and_the_flag_in_the_cli(project: Project, cli) -> None:
    before = db_snapshot(project)
    with pytest.raises(InputError, match=r"^role='boss': use one of coder, lead$"):
        accounts.add_coder(project, "carol", "boss")
    out = cli("coders", "add", "carol", "--role", "boss")
    assert out.code == 2 and out.err.strip() == "error: --role boss: use one of coder, lead"
    out = cli("coders", "add", "bad name")
    assert out.code == 2 and "bad name: a coder name is" in out.err
    assert db_snapshot(project) == before


# -- assignment -------------------------------------------------------------------------------------------


def test_assign_gives_every_coder_the_overlap_spread_through_its_queue(project: Project, docs) -> None:
    for name in ("alice", "bob", "carol"):
        accounts.add_coder(project, name)
    done = assign(project, "alice,bob,carol", n=30, overlap=12, seed=3)
    assert (done.per_coder, done.overlap, done.documents) == (30, 12, 12 + 3 * 18)
    with project.transaction() as s:
        rows = s.exec(select(Assignment)).all()
    queues: dict[int, list[Assignment]] = {}
    for a in rows:
        queues.setdefault(a.coder_id, []).append(a)
    shared = [{a.document_id for a in q if a.overlap} for q in queues.values()]
    own = [{a.document_id for a in q if not a.overlap} for q in queues.values()]
    assert all(len(q) == 30 for q in queues.values()) and shared[0] == shared[1] == shared[2]
    assert len(shared[0]) == 12 and not (own[0] & own[1]) and not (own[0] & shared[0])
    first = sorted(queues.values(), key=len)[0]
    positions = sorted(a.position for a in first if a.overlap)
    assert positions[0] <= 3 and positions[-1] >= 27  # spread, not bunched at one end
    again = assign(project, "alice,bob", n=5, overlap=0, seed=3)  # a second call adds new documents only
    with project.transaction() as s:
        second = s.exec(select(Assignment).where(col(Assignment.batch) == again.batch)).all()
    assert len(second) == 10 and not ({a.document_id for a in second} & {a.document_id for a in rows})


def test_assign_is_seeded_and_refuses_what_it_cannot_do_without_writing(project: Project, docs, cli) -> None:
    accounts.add_coder(project, "alice")
    accounts.add_coder(project, "bob")
    before = db_snapshot(project)
    for call, message in [
        (dict(coders="alice,bob", n=5, overlap=9), "overlap=9: use 0 to 5"),
        (dict(coders="alice,dave", n=5), "coder 'dave' has no open account"),
        (dict(coders="alice", n=5, overlap=2), "an overlap needs two or more coders"),
        (dict(coders="alice,bob", n=100, overlap=0), "200 documents needed"),
        (dict(coders="alice,bob", n=5, stratify_by="party"), "stratify_by='party': no document has that"),
    ]:
        with pytest.raises(InputError, match=re.escape(message)):
            assign(project, **call)  # type: ignore[arg-type]
    out = cli("assign", "--coders", "alice,bob", "--n", "5", "--overlap", "9")
    assert out.code == 2 and "--overlap 9: use 0 to 5 (the documents every coder gets, of --n 5)" in out.err
    assert db_snapshot(project) == before

    def drawn() -> list[tuple[int, int, int, bool]]:
        with project.transaction() as s:
            return sorted(
                (a.coder_id, a.document_id, a.position, a.overlap) for a in s.exec(select(Assignment)).all()
            )

    first = assign(project, "alice,bob", n=10, overlap=4, seed=7, stratify_by="year")
    picked = drawn()
    with project.transaction() as s:
        for a in s.exec(select(Assignment)).all():
            s.delete(a)
    assign(project, "alice,bob", n=10, overlap=4, seed=7, stratify_by="year")
    assert drawn() == picked and first.stratify_by == "year"  # the same seed draws the same queues
    years = {}
    with project.transaction() as s:
        from annotator.store.models import Document

        for a, d in s.exec(
            select(Assignment, Document).join(Document, col(Document.id) == col(Assignment.document_id))
        ):
            years.setdefault(a.coder_id, []).append((a.position, d.meta["year"]))
    for queue in years.values():
        first_three = {y for _, y in sorted(queue)[:3]}
        assert len(first_three) == 3  # stratified: every prefix of a queue is balanced over the years
    out = cli("assign", "--coders", "alice,bob", "--n", "3", "--json")
    assert out.code == 0 and '"batch": 2' in out.out


# -- coding -----------------------------------------------------------------------------------------------


def test_a_code_is_idempotent_undoable_and_an_ordinary_human_code(project: Project, docs) -> None:
    accounts.add_coder(project, "alice")
    assign(project, "alice", n=5)
    me = signed_in_as(project, "alice")
    item = coding.next_item(project, me)
    assert item is not None and item.position == 1
    first = coding.submit(project, me, item.document, "Positive", seconds=4.0, memo="  sure ")
    twice = coding.submit(project, me, item.document, "positive", seconds=4.0, memo="sure")
    assert first.changed and not twice.changed and first.label == "positive"
    assert coder_codes(project, "alice") == {item.document: "positive"}
    with project.transaction() as s:
        a = s.exec(select(Assignment).where(col(Assignment.coded_at).is_not(None))).one()
    assert a.seconds == 4.0 and a.memo == "sure"  # the double submit added no time
    nxt = coding.next_item(project, me)
    assert nxt is not None and nxt.document != item.document
    coding.skip(project, me, nxt.document, memo="cannot tell")
    assert coding.progress(project, me).to_json() == {"done": 1, "skipped": 1, "assigned": 5}
    assert coding.undo(project, me) == nxt.document  # the skip is taken back first
    assert coding.undo(project, me) == item.document
    assert coder_codes(project, "alice") == {}
    assert coding.next_item(project, me).document == item.document  # type: ignore[union-attr]
    with pytest.raises(InputError, match=r"^label='great': not a label of codebook sentiment"):
        coding.submit(project, me, item.document, "great")
    with pytest.raises(InputError, match=r"^document='nope': not in alice's queue$"):
        coding.submit(project, me, "nope", "positive")


def test_the_dashboard_shows_alpha_on_the_overlap_only_with_its_n(project: Project, docs) -> None:
    accounts.add_coder(project, "alice", "lead")
    accounts.add_coder(project, "bob")
    assign(project, "alice,bob", n=50, overlap=40, seed=1)
    alice, bob = signed_in_as(project, "alice"), signed_in_as(project, "bob")
    for k in range(50):
        for who, flip in ((alice, False), (bob, k % 10 == 0)):
            item = coding.next_item(project, who)
            assert item is not None
            n = int(item.document[1:])
            label = ["negative", "positive"][(n + flip) % 2]
            coding.submit(project, who, item.document, label, seconds=2.0)
    board = dashboard(project)
    [agree] = board.agreement
    assert (
        agree["overlap_documents"] == 40 and agree["n_units"] == 40
    )  # the 10 own documents each do not count
    assert agree["alpha"]["estimate"] is not None and 0.6 < agree["alpha"]["estimate"] < 0.95
    assert agree["alpha"]["low"] < agree["alpha"]["estimate"] < agree["alpha"]["high"]
    [pair] = agree["confusion"]
    assert pair["n_units"] == 40 and sum(map(sum, pair["counts"])) == 40
    assert [c["done"] for c in board.coders] == [50, 50]


def test_the_dashboard_says_too_few_units_then_provisional_then_a_figure(project: Project, docs) -> None:
    accounts.add_coder(project, "alice")
    accounts.add_coder(project, "bob")
    assign(project, "alice,bob", n=30, overlap=30)

    def code(k: int) -> None:
        for name in ("alice", "bob"):
            who = signed_in_as(project, name)
            for _ in range(k):
                item = coding.next_item(project, who)
                assert item is not None
                label = ["negative", "positive"][int(item.document[1:]) % 2]
                coding.submit(project, who, item.document, label)

    code(5)
    [agree] = dashboard(project).agreement
    assert agree["n_units"] == 5 and agree["alpha"]["estimate"] is None and not agree["provisional"]
    assert agree["alpha"]["reason"] == "too few units (5; at least 10 needed)"
    code(15)  # 20 shared documents: a figure to watch
    [agree] = dashboard(project).agreement
    assert agree["n_units"] == 20 and agree["alpha"]["estimate"] == 1.0 and agree["provisional"]
    code(10)  # 30: the figure `agreement` reports
    [agree] = dashboard(project).agreement
    assert agree["n_units"] == 30 and agree["alpha"]["estimate"] == 1.0 and not agree["provisional"]


# -- the server over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def team(project: Project, docs) -> dict[str, str]:
    links = {
        "lead": accounts.add_coder(project, "lena", "lead").path,
        "alice": accounts.add_coder(project, "alice").path,
        "bob": accounts.add_coder(project, "bob").path,
    }
    assign(project, "alice,bob", n=10, overlap=4, seed=2)
    return links


def test_without_a_session_every_page_and_post_is_refused(project: Project, team) -> None:
    with serving(project) as base:
        anon = httpx.Client(base_url=base, timeout=30)
        for path in ("/", "/code", "/dashboard"):
            assert anon.get(path).status_code == 401, path
        for path in ("/code", "/undo"):
            assert anon.post(path, data={"document": "d001", "label": "positive"}).status_code == 401, path
        assert anon.get("/signin/not-a-token").status_code == 401
        assert coder_codes(project, "alice") == {}


def test_a_coder_sees_only_its_own_queue_and_no_lead_page(project: Project, team) -> None:
    with serving(project) as base:
        alice, bob = signed_in(base, team["alice"]), signed_in(base, team["bob"])
        page = alice.get("/code")
        assert page.status_code == 200 and "alice (coder)" in page.text
        cookie = page.request.headers["cookie"]
        assert "annotator_session=" in cookie
        raw_cookie = next(iter(alice.cookies.jar))
        assert raw_cookie.has_nonstandard_attr("HttpOnly") or "httponly" in str(raw_cookie._rest).lower()
        assert alice.get("/dashboard").status_code == 403
        assert alice.get("/").headers["location"] == "/code"
        bobs = current_document(bob)
        alices = current_document(alice)
        token = csrf(alice)
        with project.transaction() as s:
            own = {a.document_id for a in s.exec(select(Assignment)).all()}
        assert own
        # bob's own (non-overlap) document is not in alice's queue: alice cannot code it
        with project.transaction() as s:
            from annotator.store.models import Coder, Document

            bob_only = s.exec(
                select(Document.doc_key)
                .join(Assignment, col(Assignment.document_id) == col(Document.id))
                .join(Coder, col(Coder.id) == col(Assignment.coder_id))
                .where(col(Coder.name) == "bob", col(Assignment.overlap).is_(False))
            ).first()
        refused = alice.post("/code", data={"csrf": token, "document": bob_only, "label": "positive"})
        assert refused.status_code == 400 and "not in alice" in refused.text
        assert (
            alice.post("/code", data={"csrf": token, "document": alices, "label": "positive"}).status_code
            == 303
        )
        assert bob.get("/code").text.count("positive") >= 1 and "alice" not in bob.get("/code").text
        assert bobs is not None and coder_codes(project, "bob") == {}


def test_a_post_without_the_csrf_token_is_refused(project: Project, team) -> None:
    with serving(project) as base:
        alice = signed_in(base, team["alice"])
        doc = current_document(alice)
        for data in ({}, {"csrf": "forged"}):
            answer = alice.post("/code", data={**data, "document": doc, "label": "positive"})
            assert answer.status_code == 403
        assert alice.post("/undo", data={}).status_code == 403
        assert alice.post("/signout", data={}).status_code == 403
        assert coder_codes(project, "alice") == {}


def test_a_revoked_coder_is_signed_out_at_once_and_its_link_stops_working(project: Project, team) -> None:
    with serving(project) as base:
        alice = signed_in(base, team["alice"])
        assert alice.get("/code").status_code == 200
        accounts.revoke_coder(project, "alice")
        assert alice.get("/code").status_code == 401  # the open session ends with the account
        assert httpx.get(base + team["alice"]).status_code == 401


def test_a_hostile_document_renders_as_text_and_no_token_reaches_a_page(project: Project, docs) -> None:
    link = accounts.add_coder(project, "alice", "lead")
    with project.transaction() as s:
        from annotator.store.models import Document

        hostile = s.exec(select(Document).where(col(Document.doc_key) == "d000")).one()
        s.add(
            Assignment(
                coder_id=signed_in_as(project, "alice").coder_id,
                document_id=hostile.id,
                codebook="sentiment",
                position=1,
                batch=1,
            )
        )
    with serving(project) as base:
        alice = signed_in(base, link.path)
        page = alice.get("/code")
        assert "<script>" not in page.text and "&lt;script&gt;" in page.text
        assert "<img src=x" not in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"
        for path in ("/code", "/dashboard"):
            assert link.token not in alice.get(path).text


def test_a_code_posted_twice_is_stored_once(project: Project, team) -> None:
    with serving(project) as base:
        alice = signed_in(base, team["alice"])
        token, doc = csrf(alice), current_document(alice)
        for _ in range(3):
            answer = alice.post(
                "/code", data={"csrf": token, "document": doc, "label": "negative", "seconds": "2.5"}
            )
            assert answer.status_code == 303
        assert coder_codes(project, "alice") == {doc: "negative"}
        progress = alice.get("/code").text
        assert "1 of 10 coded" in progress
        lead = signed_in(base, team["lead"])
        board = lead.get("/dashboard")
        assert board.status_code == 200 and "alice" in board.text and "too few units" in board.text


def test_a_lead_assigns_from_the_assign_page_and_a_coder_cannot(project: Project, team) -> None:
    with serving(project) as base:
        lead, alice = signed_in(base, team["lead"]), signed_in(base, team["alice"])
        assert alice.get("/assign").status_code == 403
        token_a = csrf(alice)
        refused = alice.post("/assign", data={"csrf": token_a, "coder": ["alice"], "n": "5"})
        assert refused.status_code == 403
        form = lead.get("/assign")
        assert form.status_code == 200
        assert "dev (" in form.text and ">year<" in form.text  # free documents per split, metadata columns
        assert re.search(r"<td>1</td><td>sentiment</td>.*<td>alice, bob</td><td>16</td><td>4</td>", form.text)
        token = csrf(lead, "/assign")
        before = db_snapshot(project)
        for bad, named in (
            ({"n": "ten"}, "n \u201cten\u201d: give a whole number"),
            ({"n": "5", "overlap": "9"}, "overlap \u201c9\u201d"),
            ({"n": "5", "stratify_by": "decade"}, "stratify_by \u201cdecade\u201d: no document has that"),
            ({"n": "500"}, "documents needed"),
        ):
            answer = lead.post("/assign", data={"csrf": token, "coder": ["alice", "bob"], **bad})
            assert answer.status_code == 400 and named in answer.text, (bad, answer.text)
            assert 'href="/assign"' in answer.text
        assert lead.post("/assign", data={"csrf": "forged", "coder": ["alice"], "n": "5"}).status_code == 403
        assert db_snapshot(project) == before  # nothing written by a refused form
        data = {
            "csrf": token,
            "coder": ["alice", "bob"],
            "n": "6",
            "overlap": "2",
            "stratify_by": "year",
            "seed": "3",
        }
        made = lead.post("/assign", data=data)
        assert made.status_code == 303 and made.headers["location"] == "/assign?made=2"
        shown = lead.get(made.headers["location"]).text
        assert (
            "Assignment 2 queued: 10 documents of codebook sentiment for alice, bob (2 shared by all)"
            in shown
        )
        assert (
            coding.progress(project, accounts.sign_in(project, team["alice"].rsplit("/", 1)[1])).assigned
            == 16
        )
    # 2 shared documents in both queues, 4 of each coder's own
    with project.transaction() as s:
        second = sorted(
            (a.coder_id, a.document_id, a.overlap)
            for a in s.exec(select(Assignment).where(Assignment.batch == 2))
        )
    assert len(second) == 12 and sum(o for _, _, o in second) == 4


FRAMES = """\
name: frames
version: 1
description: Which frames a text uses (any number of them).
kind: multilabel
labels:
  - name: economy
    definition: Costs, jobs, growth.
  - name: morality
    definition: Right and wrong.
  - name: security
    definition: Safety, crime, defence.
uncertain:
  definition: Cannot tell.
"""


def test_a_multilabel_codebook_is_coded_with_boxes_and_stored_as_a_label_set(project: Project, docs) -> None:
    (project.codebooks_dir / "frames.yaml").write_text(FRAMES, encoding="utf-8")
    links = {name: accounts.add_coder(project, name, role).path for name, role in
             (("lena", "lead"), ("alice", "coder"), ("bob", "coder"))}  # fmt: skip
    assign(project, "alice,bob", n=4, overlap=4, seed=1, codebook="frames")
    with serving(project) as base:
        alice, bob = signed_in(base, links["alice"]), signed_in(base, links["bob"])
        page = alice.get("/code").text
        assert 'data-kind="multilabel"' in page and page.count('type="checkbox" name="label"') == 4
        token, doc = csrf(alice), current_document(alice)
        empty = alice.post("/code", data={"csrf": token, "document": doc})
        assert empty.status_code == 400 and "label \u201c\u201d: not a label of codebook frames" in empty.text
        bogus = alice.post("/code", data={"csrf": token, "document": doc, "label": ["economy", "sports"]})
        assert bogus.status_code == 400 and "economy;sports" in bogus.text
        saved = alice.post("/code", data={"csrf": token, "document": doc, "label": ["security", "economy"]})
        assert saved.status_code == 303
        assert coder_codes(project, "alice") == {doc: "economy;security"}
        bob_token = csrf(bob)
        while (next_doc := current_document(bob)) is not None:
            bob.post(
                "/code", data={"csrf": bob_token, "document": next_doc, "label": ["economy", "security"]}
            )
        board = signed_in(base, links["lena"]).get("/dashboard").text
        assert "not computed: a multilabel codebook" in board and "n = 1 documents" in board
