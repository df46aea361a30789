"""`annotator report`: the methods appendix as HTML and Markdown, on an empty and on a full project.

The full project is built once for the module: the bundled example (120 sentences, 5 crowd coders, the
critics' gold), a stratified split and a forced re-split, scripted LLM runs on dev and test, a baseline run,
agreement and validation. Hostile text is planted in the codebook, a prompt and a document (markup that must
come out escaped) and credential-shaped values in run parameters and the environment (that must not come
out at all). The browser test opens the HTML in headless Chromium.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from annotator.data.corpus import import_documents
from annotator.data.example import import_example
from annotator.data.splits import make_split
from annotator.project import Project, init_project
from annotator.report import ReportError, build_report, report_text, resolve_format
from annotator.report.fmt import ci, md, md_block, redact, scrub_text
from annotator.report.gather import gather
from annotator.report.render import render
from annotator.services.agreement import agreement
from annotator.services.validation import validate
from annotator.store.models import Annotation, Coder, Document, Metric, PromptVersion, Run, utcnow
from annotator.store.registry import freeze_prompt
from tests.conftest import label_by_word, scripted_run, umask, write

SCRIPT = "<script>document.title='PWNED'</script>"
IMG = "<img src=x onerror=\"document.title='PWNED'\">"
EVIL_PROMPT = "sentiment/evil.v1"
SECRET_ENV = "REPORT_TEST_SERVICE_TOKEN"
SECRET_VALUE = "tok-9f8e7d6c5b4a39281706"  # appears in a prompt: the report must not show it
KEY_IN_PARAMS = "sk-abcdefghijklmnopqrstuvwx0123456789"
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# -- building a full project --------------------------------------------------------------------------


def _gold(project: Project) -> dict[str, str]:
    """Document text -> the critics' label."""
    with project.transaction() as s:
        rows = s.exec(
            select(Document.text, Annotation.label)
            .join(Annotation, col(Annotation.document_id) == Document.id)
            .join(Run, col(Run.id) == Annotation.run_id)
            .join(Coder, col(Coder.id) == Run.coder_id)
            .where(col(Coder.name) == "critics")
        ).all()
    return {text: label or "positive" for text, label in rows}


def _scripted_run(project: Project, prompt: str, split: str, wrong_every: int) -> int:
    gold = _gold(project)
    flip = {"positive": "negative", "negative": "positive"}
    texts = sorted(gold)
    wrong = {t for i, t in enumerate(texts) if i % wrong_every == 0}

    def label_for(text: str) -> str:
        label = gold.get(text.strip(), "positive")
        return flip.get(label, label) if text.strip() in wrong else label

    return scripted_run(project, label_for, prompt=prompt, split=split).run_id


def _baseline_run(project: Project) -> int:
    """A baseline run as the baseline runner stores one: a coder of kind baseline, settings in params."""
    gold = _gold(project)
    with project.transaction() as s:
        coder = Coder(name="tfidf-logreg", kind="baseline")
        s.add(coder)
        s.flush()
        codebook_id = s.exec(select(Run.codebook_id).where(col(Run.kind) == "gold")).first()
        run = Run(
            coder_id=coder.id,  # type: ignore[arg-type]
            kind="baseline",
            codebook_id=codebook_id,
            model="baseline/tfidf-logreg",
            params={"family": "tfidf", "C": 1.0, "max_features": 5000, "fit_split": "dev", "seed": 0},
            split="test",
            status="done",
            finished_at=utcnow(),
            versions={"annotator": "test", "scikit-learn": "1.x"},
        )
        s.add(run)
        s.flush()
        docs = s.exec(select(Document).where(col(Document.split) == "test")).all()
        for i, d in enumerate(docs):
            label = gold.get(d.text, "positive")
            if i % 4 == 0:
                label = "negative" if label == "positive" else "positive"
            s.add(Annotation(run_id=run.id, document_id=d.id, label=label, status="ok"))  # type: ignore[arg-type]
        run.n_items = run.n_ok = len(docs)
        s.add(run)
        assert run.id is not None
        return run.id


def _build_full(root: Path) -> dict[str, Any]:
    project = init_project(root, example="sentiment")
    # hostile text in the codebook (registered as the codebook's body) and in a prompt
    cb_path = project.codebook_path("sentiment")
    cb_path.write_text(
        cb_path.read_text(encoding="utf-8").replace(
            "Read the whole sentence, then ask:", f"Read the whole sentence {SCRIPT}, then ask:"
        ),
        encoding="utf-8",
    )
    zero = (project.prompts_dir / "sentiment" / "zero-shot.v1.jinja").read_text(encoding="utf-8")
    evil = zero.replace(
        "Read the text the user sends",
        f"</pre>{SCRIPT}{IMG} Service token {SECRET_VALUE}. Read the text the user sends",
    )
    write(project.prompts_dir / "sentiment" / "evil.v1.jinja", evil)

    import_example(project, n=120, raters=5, seed=3)
    docs_csv = write(root / "extra.csv", f'id,text,note\nx-1,"{SCRIPT} a fine film",{IMG}\n')
    import_documents(project, docs_csv)
    make_split(project, test=0.3, seed=1, stratify_by_coder="critics")
    make_split(project, test=0.3, seed=2, stratify_by_coder="critics", force=True)

    dev_run = _scripted_run(project, "sentiment/zero-shot.v1", "dev", wrong_every=5)
    freeze_prompt(project, "sentiment/zero-shot.v1")
    test_run = _scripted_run(project, "sentiment/zero-shot.v1", "test", wrong_every=6)
    freeze_prompt(project, EVIL_PROMPT)
    evil_run = _scripted_run(project, EVIL_PROMPT, "test", wrong_every=3)
    baseline = _baseline_run(project)
    with project.transaction() as s:
        # the evil prompt was "frozen" only after its test run started: the report must say so
        run = s.get(Run, evil_run)
        assert run is not None and run.prompt_id is not None
        prompt = s.get(PromptVersion, run.prompt_id)
        assert prompt is not None
        prompt.frozen_at = run.started_at + timedelta(hours=1)
        s.add(prompt)
        # credentials that must never reach a report, whatever stored them
        run.params = {
            **run.params,
            "api_key": KEY_IN_PARAMS,
            "base_url": "http://alice:hunter2secret@llm.example.org:8000/v1?api_key=zzzzzzzzzz",
        }
        run.error = f"earlier attempt: 401 Incorrect API key provided: {KEY_IN_PARAMS}"
        s.add(run)

    agreement(project, split="dev", n_boot=200, seed=1)
    agreement(project, split="dev", n_boot=200, seed=2)  # the same analysis again: only the latest shows
    agreement(project, split="test", n_boot=200, seed=1)
    validate(project, "critics", split="test", n_boot=200, seed=1)
    validate(project, "critics", split="dev", n_boot=200, seed=1, by="critics")
    return {
        "project": project,
        "runs": {"dev": dev_run, "test": test_run, "evil": evil_run, "baseline": baseline},
    }


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("report") / "proj"
    old = os.environ.get(SECRET_ENV)
    os.environ[SECRET_ENV] = SECRET_VALUE
    try:
        built = _build_full(root)
        project = built["project"]
        built["html_path"] = build_report(project, root / "report.html")
        built["md_path"] = build_report(project, root / "report.md")
        built["html"] = built["html_path"].read_text(encoding="utf-8")
        data = gather(project)
        render(data, "html", strict=True)  # every name the templates use exists
        render(data, "md", strict=True)
        built["md"] = built["md_path"].read_text(encoding="utf-8")
        yield built
        project.engine.dispose()
    finally:
        if old is None:
            os.environ.pop(SECRET_ENV, None)
        else:
            os.environ[SECRET_ENV] = old


# -- content ------------------------------------------------------------------------------------------

INTERVAL = re.compile(r"-?\d\.\d\d \[-?\d\.\d\d, -?\d\.\d\d\]")


def _text(html: str) -> str:
    """Visible text, roughly: tags out, entities of the common kinds back."""
    text = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    for a, b in (
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&#34;", '"'),
        ("&#39;", "'"),
        ("&quot;", '"'),
        ("&amp;", "&"),
    ):
        text = text.replace(a, b)
    return re.sub(r"\s+", " ", text)


@pytest.mark.slow
def test_html_documents_the_whole_pipeline(full: dict[str, Any]) -> None:
    html, runs = full["html"], full["runs"]
    text = _text(html)
    for title in (
        "1. Summary",
        "2. Data and splits",
        "3. Codebook",
        "4. Prompts",
        "5. Models and parameters",
        "6. Runs",
        "7. Baselines",
        "8. Reliability",
        "9. Validation against gold",
        "10. Comparison of runs",
        "11. Estimates",
        "12. Prompt freezing and the test split",
        "13. Cost and time",
        "14. Human coding: workbench, review and adjudication",
        "15. Software versions",
    ):
        assert title in text
    # data and splits: documents per split and both split events, the second one forced
    assert "121 documents" in text
    assert "stratified by" in text and "coder:critics" in text
    assert "yes: an existing test split was reassigned" in text
    assert "Every LLM and baseline run started after the last re-split." in text
    # codebook body and every prompt's full text
    assert "The evaluative polarity of one sentence" in text
    zero = (full["project"].prompts_dir / "sentiment" / "zero-shot.v1.jinja").read_text(encoding="utf-8")
    assert "You are a careful coder in a social-science study." in text
    assert "{{ document.text }}" in text and zero.splitlines()[-1] in text
    assert "sentiment/zero-shot.v1" in text and EVIL_PROMPT in text
    # models and parameters, runs of every kind
    assert "openai-compatible/scripted" in text and "baseline/tfidf-logreg" in text
    assert '"max_features": 5000' in text and '"temperature": 0' in text
    for kind in ("gold", "human", "llm", "baseline"):
        assert f" {kind} " in text
    # reliability and validation with intervals, and when each was computed
    assert "Krippendorff's alpha" in text and "mean pairwise Cohen's kappa" in text
    assert len(INTERVAL.findall(text)) > 20
    assert "earlier computation(s) of the same analysis not shown" in text
    assert (
        "Against critics on the test split" in text and "Against critics on the dev split, by critics" in text
    )
    assert "Computed 20" in text and " UTC" in text
    assert html.count("<svg") >= 6 and "Confusion matrix of run" in html
    assert "(invalid/missing)" in text
    # the frozen statement: the honest run and the one frozen too late
    assert f"run {runs['test']}: prompt sentiment/zero-shot.v1 was frozen at" in text
    assert "before the run started" in text
    assert f"run {runs['evil']}: prompt {EVIL_PROMPT} was NOT frozen before the run started" in text
    assert (
        "1 of 3 runs on the test split used a prompt that was not frozen" not in text
    )  # baselines have no prompt
    # the baseline on test has no prompt: it is listed, not counted
    assert "1 of 2 runs on the test split used a prompt that was not frozen before the run started" in text
    assert f"without a prompt (baselines, nothing to freeze): {runs['baseline']}" in text
    # software
    assert "Python 3." in text and "openai" in text  # the client that sent the scripted runs' requests
    # the summary headlines each run's validated figure on the items it was asked; the leaderboard is there
    assert f"Validated: run {runs['test']}" in text and "test items of critics it was asked" in text
    assert "10.1 Against critics (codebook sentiment)" in text and "Leaderboard" in text
    assert "McNemar's exact test" in text
    # the pooled alpha is labelled for what it is, beside the run's own figures
    assert "The humans' reliability with each run added" in text and "alpha vs human majority" in text
    assert "Humans and the LLM coded under the same codebook version (sentiment@1)." in text


@pytest.mark.slow
def test_html_escapes_user_text_and_holds_no_secret(full: dict[str, Any]) -> None:
    html = full["html"]
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "onerror=" not in html.replace("onerror=&#34;", "")  # only as escaped text
    assert "&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt;" in html
    assert "&lt;/pre&gt;" in html
    assert 'http-equiv="Content-Security-Policy"' in html and "default-src 'none'" in html
    for secret in (SECRET_VALUE, KEY_IN_PARAMS, "hunter2secret", "zzzzzzzzzz", "alice:"):
        assert secret not in html, secret
        assert secret not in full["md"], secret
    assert "[redacted]" in html


class _Refs(HTMLParser):
    """Every URL-valued attribute of the real tags (escaped text is not a tag), and inline styles."""

    URL_ATTRS = frozenset({"src", "href", "action", "formaction", "poster", "data", "xlink:href", "srcset"})

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: set[str] = set()
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in self.URL_ATTRS:
                self.refs.append(value or "")
            if name == "style" and value:
                self.styles.append(value)

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False


@pytest.mark.slow
def test_html_is_self_contained(full: dict[str, Any]) -> None:
    parser = _Refs()
    parser.feed(full["html"])
    assert parser.refs, "expected internal links"
    assert all(r.startswith("#") for r in parser.refs), [r for r in parser.refs if not r.startswith("#")]
    assert not parser.tags & {"script", "img", "link", "iframe", "object", "embed", "video", "audio", "base"}
    css = "\n".join(parser.styles)
    assert "url(" not in css and "@import" not in css
    assert not re.search(r"https?://", full["html"].split("<body>")[0])  # nothing in the head either


@pytest.mark.slow
def test_markdown_has_the_same_content(full: dict[str, Any]) -> None:
    text, runs = full["md"], full["runs"]
    assert text.startswith("# Methods appendix:")
    for title in ("## 1. Summary", "## 3. Codebook", "## 8. Reliability", "## 9. Validation against gold"):
        assert title in text
    assert "[Validation against gold](#9-validation-against-gold)" in text
    assert "| run | model | prompt | n | accuracy | macro F1 | Cohen's kappa |" in text
    assert len(INTERVAL.findall(text)) > 20
    assert "| gold \\ run |" in text and "(invalid/missing)" in text
    assert f"run {runs['evil']}: prompt {EVIL_PROMPT} was NOT frozen before the run started" in md_unescape(
        text
    )
    # user text: fenced blocks hold prompts verbatim; elsewhere no raw HTML
    assert "```jinja\n---\ndescription: Zero-shot polarity" in text
    outside = re.sub(r"(?ms)^(`{3,})[a-z]*\n.*?^\1$", "", text)
    assert "<script" not in outside and "<img" not in outside
    # every table row has as many cells as its header
    for block in re.findall(r"(?m)((?:^\|.*\|\n)+)", outside):
        rows = block.strip("\n").split("\n")
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in rows}
        assert len(widths) == 1, rows


def md_unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


# -- the browser --------------------------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.slow
def test_chromium_renders_without_console_errors(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("ANNOTATOR_SKIP_BROWSER") == "1":
            pytest.skip("ANNOTATOR_SKIP_BROWSER=1 and no chromium")
        pytest.fail(
            "chromium is not installed: install it (Debian: apt-get install -y chromium; `make test` does it "
            "as root) or set ANNOTATOR_SKIP_BROWSER=1 to skip this test"
        )
    full = request.getfixturevalue("full")  # built only when there is a browser to open it
    url = full["html_path"].resolve().as_uri()
    shot = tmp_path / "report.png"
    common = [
        browser,
        *BROWSER_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    shot_run = subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1280,2000", url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert shot.is_file(), shot_run.stderr[-3000:]
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    dom_run = subprocess.run(
        [*common, "--dump-dom", url], capture_output=True, text=True, timeout=120, env=env
    )
    dom = dom_run.stdout
    assert "Methods appendix:" in dom and "9. Validation against gold" in dom
    assert "<title>Methods appendix:" in dom and "PWNED</title>" not in dom  # no planted script ran
    logs = shot_run.stderr + dom_run.stderr
    console = [line for line in logs.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    violations = [line for line in logs.splitlines() if "Content Security Policy" in line]
    assert not violations, violations


# -- an empty project, the CLI and bad input -----------------------------------------------------------


def test_empty_project_reports_what_is_missing(project: Project, cli) -> None:
    result = cli("report")
    assert result.code == 0, result
    path = Path(result.out.strip())
    assert path == project.root / "report.html" or path.name == "report.html"
    text = _text(path.read_text(encoding="utf-8"))
    assert "No documents imported yet" in text
    assert "Not computed: run annotator agreement " in text
    assert "Not computed: run annotator validate --gold NAME" in text
    md_out = cli("report", "--format", "md")
    assert md_out.code == 0, md_out
    assert Path(md_out.out.strip()).name == "report.md"
    assert "not computed: run `annotator agreement`" in Path(md_out.out.strip()).read_text(encoding="utf-8")


def test_cli_writes_the_named_file_and_prints_its_path(project: Project, cli, tmp_path: Path) -> None:
    out = tmp_path / "appendix.md"
    result = cli("report", "--out", str(out))
    assert result.code == 0, result
    assert result.out.strip() == str(out.resolve())
    assert out.read_text(encoding="utf-8").startswith("# Methods appendix:")
    other = cli("report", "--out", str(tmp_path / "appendix.txt"), "--format", "html")
    assert other.code == 0, other
    assert (tmp_path / "appendix.txt").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "report.pdf"], "does not say the format"),
        (["--out", "report"], "does not say the format"),
        (["--out", "report.html", "--format", "md"], "--format md but report.html ends in .html"),
        (["--format", "docx"], "--format docx: use html or md"),
        (["--out", "missing-folder/report.html"], "does not exist"),
        (["--out", "."], "is a folder"),
    ],
)
def test_bad_output_is_one_line_and_exit_2(project: Project, cli, args: list[str], message: str) -> None:
    result = cli("report", *args)
    assert result.code == 2, result
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not list(project.root.glob("*.tmp")) and not list(project.root.glob(".*.tmp"))


def test_unwritable_folder_is_refused(
    project: Project, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    real_access = os.access
    # root may write anywhere: pretend the folder is read-only, as it is for an ordinary user
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == folder else real_access(p, mode))
    result = cli("report", "--out", str(folder / "report.html"))
    assert result.code == 2 and "not writable" in result.err, result
    assert not list(folder.iterdir())


def test_a_failed_temp_file_is_one_line(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import annotator.services.export.files as files_module

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files_module, "_create_temp", refuse)
    with pytest.raises(ReportError, match=r"cannot write in .*Permission denied"):
        build_report(project, tmp_path / "report.html")
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]


def test_no_project_is_one_line_and_exit_2(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("report")
    assert result.code == 2
    assert "no annotator project" in result.err
    assert not (tmp_path / "report.html").exists()


def test_a_failed_render_leaves_the_old_report(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "report.html"
    out.write_text("old", encoding="utf-8")

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(ReportError, match=r"cannot write .*report\.html: No space left on device"):
        build_report(project, out, overwrite=True)
    assert out.read_text(encoding="utf-8") == "old"
    assert [p.name for p in folder.iterdir()] == ["report.html"]


def test_an_existing_report_is_refused_unless_forced(project: Project, cli, tmp_path: Path) -> None:
    """The rule of every file annotator writes for a user to share: no silent overwrite; --force replaces."""
    for name in ("report.html", "report.md"):
        out = tmp_path / name
        out.write_text("my edited copy\n", encoding="utf-8")
        result = cli("report", "--out", str(out))
        assert result.code == 2, result
        assert len(result.err.strip().splitlines()) == 1
        assert f"{out} already exists; pass --force to replace it, or choose another --out" in result.err
        assert out.read_text(encoding="utf-8") == "my edited copy\n"
        forced = cli("report", "--out", str(out), "--force")
        assert forced.code == 0, forced
        assert forced.out.strip() == str(out.resolve())
        assert out.read_text(encoding="utf-8").startswith(("<!DOCTYPE html>", "# Methods appendix:"))
    # the default file name too
    assert cli("report").code == 0
    again = cli("report")
    assert again.code == 2 and "report.html already exists; pass --force" in again.err
    assert cli("report", "--force").code == 0
    assert not [p for p in project.root.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(ReportError, match="already exists"):
        build_report(project, tmp_path / "report.md")


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_report_follows_theumask(project: Project, tmp_path: Path, mask: int) -> None:
    with umask(mask):
        for name in ("report.html", "report.md"):
            path = build_report(project, tmp_path / name)
            assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, name
            build_report(project, path, overwrite=True)
            assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, name


def test_partial_stored_results_still_render(project: Project) -> None:
    """Rows stored by older versions may lack keys: the report shows n/a instead of failing."""
    with project.transaction() as s:
        s.add(Metric(kind="agreement", split="dev", params={}, result={}))
        s.add(
            Metric(
                kind="agreement", split="test", params={"codebook": "x"}, result={"humans": {}, "runs": [{}]}
            )
        )
        s.add(Metric(kind="validation", split="test", params={"gold": "g"}, result={}))
        s.add(
            Metric(
                kind="validation",
                split="dev",
                params={"gold": "g"},
                result={"run": {"run_id": 99, "confusion": {}, "frozen": {}, "by": {}}},
            )
        )
    html = report_text(project, "html")
    assert "n/a" in html and "Validation against gold" in html
    assert report_text(project, "md").count("| n/a |") > 0


def test_report_computes_reliability_and_the_leaderboard_when_none_is_stored(project: Project) -> None:
    """No `agreement` or `compare` was run: the report computes them, each run on the units it was asked;
    an agreement stored before the coverage rule (pooled 'alpha with humans') is not shown."""
    import_example(project, n=120, raters=5, seed=3)
    make_split(project, test=0.3, seed=1, stratify_by_coder="critics")
    freeze_prompt(project, "sentiment/zero-shot.v1")
    run = scripted_run(project, label_by_word({}, "positive"), split="test").run_id
    validate(project, split="test", n_boot=50)  # the only gold coder: critics
    with project.transaction() as s:
        s.add(
            Metric(
                kind="agreement",
                split="test",
                params={"codebook": "sentiment"},
                result={"runs": [{"run_id": run, "alpha_with_humans": {"estimate": 0.99}}], "humans": {}},
            )
        )
    text = _text(report_text(project, "html"))
    assert "Computed for this report with the default settings" in text
    assert "0.99" not in text  # the old pooled figure
    assert f"Validated: run {run}" in text and "10.1 Against critics" in text
    with project.transaction() as s:  # the leaderboard was computed and stored for provenance
        assert s.exec(select(Metric).where(col(Metric.kind) == "compare")).first() is not None


def test_report_text_api(project: Project) -> None:
    assert report_text(project, "md").startswith("# Methods appendix:")
    assert report_text(project, "html").startswith("<!DOCTYPE html>")
    assert resolve_format(Path("a.HTM"), None) == "html"
    assert resolve_format(Path("a.markdown"), None) == "md"
    assert resolve_format(Path("a.out"), "markdown") == "md"


# -- helpers --------------------------------------------------------------------------------------------


def test_interval_format() -> None:
    assert ci({"estimate": 0.8123, "low": 0.771, "high": 0.8549}) == "0.81 [0.77, 0.85]"
    assert ci({"estimate": 0.5, "low": None, "high": None}) == "0.50"
    assert ci({"estimate": None, "low": None, "high": None}) == "n/a"
    assert ci(None) == "n/a"


def test_redaction() -> None:
    params = {
        "api_key": "abc12345678",
        "OPENAI_API_KEY": "x" * 20,
        "max_tokens": 64,
        "tokens_in": 3,
        "author": "me",
        "headers": {"Authorization": "Bearer abcdefghijkl"},
        "base_url": "https://user:pw@host.example:8443/v1?key=secret1234&x=1",
        "note": "key sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX was rejected",
        "doc_key": "rt-1",
    }
    out = redact(params)
    assert out["api_key"] == out["OPENAI_API_KEY"] == "[redacted]"
    assert out["max_tokens"] == 64 and out["tokens_in"] == 3 and out["author"] == "me"
    assert out["doc_key"] == "rt-1"
    assert out["headers"]["Authorization"] == "[redacted]"
    assert "pw@" not in out["base_url"] and "secret1234" not in out["base_url"]
    assert out["base_url"].startswith("https://host.example:8443/v1?")
    assert "sk-proj" not in out["note"]
    assert scrub_text("see Bearer abc.def-ghi123") == "see [redacted]"


def test_markdown_escaping() -> None:
    assert md("a|b <script>*x*") == "a\\|b &lt;script&gt;\\*x\\*"
    assert md("two\nlines") == "two lines"
    block = md_block("x\n```\ny", "yaml")
    assert block.startswith("````yaml\n") and block.endswith("\n````")
