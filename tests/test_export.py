"""`annotator export`: every format read back, import round trip, sidecars, the validation gate, refusals."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sqlmodel import col, select

from annotator.codebook import to_yaml
from annotator.data.corpus import import_codes, import_documents
from annotator.errors import AnnotatorError, InputError
from annotator.llm.spec import RunRequest
from annotator.services import run as runner
from annotator.services.agreement import agreement
from annotator.services.export import COLUMNS, ExportResult, check_validation, export_frame, export_run
from annotator.services.validation import validate
from annotator.store.models import Annotation, CodebookVersion, Coder, Document, Metric, PromptVersion, Run
from annotator.store.registry import freeze_prompt, stored_codebook
from tests.conftest import copy_run, import_docs, model_answers, stays_invalid, umask, word_texts, write
from tests.scripted_server import ScriptedServer

N = 40
KEYS = [f"d{i:02d}" for i in range(N)]
GOLD = ["positive" if i % 3 else "negative" for i in range(N)]
WRONG = {5, 10}
BOGUS = {7, 14, 22}  # a label outside the codebook, again when re-asked: stored as invalid answers
NEUTRAL = {2}
SPLIT = ["dev" if i % 4 == 0 else "test" for i in range(N)]


MODEL = model_answers(GOLD, wrong=WRONG, uncertain=NEUTRAL, invalid=BOGUS)
# what an export must say: the model's label, or nothing for an invalid answer
EXPECTED = {k: (None if i in BOGUS else MODEL[i]) for i, k in enumerate(KEYS)}
EXPORT_KEYS = [  # `annotator export --json` before the result was typed: the same keys, in the same order
    "path",
    "format",
    "run_id",
    "split",
    "repeat",
    "n_rows",
    "n_ok",
    "n_invalid",
    "n_error",
    "columns",
    "codebook_path",
    "provenance_path",
    "label_codes",
    "validation",
    "warnings",
]


def _import(project, tmp_path: Path, name: str, labels: list[str], kind: str = "human") -> None:
    rows = "".join(f"{k},{lab}\n" for k, lab in zip(KEYS, labels, strict=True))
    import_codes(project, write(tmp_path / f"{name}.csv", "id,label\n" + rows), coder=name, kind=kind)


@pytest.fixture
def setup(project, tmp_path: Path):
    splits = dict(zip(KEYS, SPLIT, strict=True))
    columns = {"source type": [i % 2 for i in range(N)]}
    import_docs(project, tmp_path, word_texts(KEYS), splits, columns, id_column="tweet_id")
    _import(project, tmp_path, "critics", GOLD, kind="gold")
    freeze_prompt(project, "sentiment/zero-shot.v1")
    return project, copy_run(project, KEYS, MODEL, split="all", rule=stays_invalid())


def _labels(frame: pd.DataFrame) -> dict[str, str | None]:
    return {
        str(k): (None if pd.isna(v) else str(v)) for k, v in zip(frame["id"], frame["label"], strict=True)
    }


def test_frame_has_labels_and_provenance(setup) -> None:
    project, run_id = setup
    frame = export_frame(project, run_id)
    assert list(frame.columns) == list(COLUMNS)
    assert list(frame["id"]) == KEYS  # document order
    assert _labels(frame) == EXPECTED
    bad = frame[frame["status"] != "ok"]
    assert set(bad["id"]) == {KEYS[i] for i in BOGUS}
    assert set(bad["raw"]) == {'{"label": "bogus"}'}  # the answer to the re-ask
    (error,) = set(bad["error"])
    assert error.startswith("does not match the codebook's answer schema (label: Input should be")
    assert frame.loc[frame["status"] == "ok", "raw"].isna().all()
    with project.transaction() as s:
        run = s.get(Run, run_id)
        prompt = s.get(PromptVersion, run.prompt_id)
        cb = s.get(CodebookVersion, run.codebook_id)
        prompt_name, prompt_version, prompt_sha = prompt.name, prompt.version, prompt.sha256
        cb_row = (cb.name, cb.version, cb.sha256)
        model = run.model
    first = frame.iloc[0]
    assert (first["prompt"], first["prompt_version"], first["prompt_sha256"]) == (
        prompt_name,
        prompt_version,
        prompt_sha,
    )
    assert (first["codebook"], first["codebook_version"], first["codebook_sha256"]) == cb_row
    assert first["model"] == model == "openai-compatible/scripted" and first["run_id"] == run_id
    assert set(frame["repeat"]) == {0} and first["kind"] == "llm"
    assert all(t.endswith("Z") and "T" in t for t in frame["created_at"])
    assert list(frame["split"]) == SPLIT
    # text and metadata on request
    wide = export_frame(project, run_id, text=True, meta=True)
    assert wide["text"].iloc[3] == "wordd03 sentence about a film"
    assert list(wide["meta_source type"].astype(str))[:2] == ["0", "1"]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet", "xlsx", "dta"])
def test_every_format_reads_back(setup, fmt: str, tmp_path: Path) -> None:
    project, run_id = setup
    out = tmp_path / "out" / f"labels.{fmt}"
    out.parent.mkdir()
    result = export_run(project, run_id, out)
    assert result.format == fmt and result.n_rows == N and Path(result.path) == out
    assert (result.n_ok, result.n_invalid, result.n_error) == (N - len(BOGUS), len(BOGUS), 0)
    if fmt in ("csv", "tsv"):
        back = pd.read_csv(out, sep="," if fmt == "csv" else "\t", dtype=str, keep_default_na=False)
        back["label"] = back["label"].replace("", None)
    elif fmt == "jsonl":
        back = pd.read_json(out, lines=True, dtype={"id": str})
    elif fmt == "parquet":
        back = pd.read_parquet(out)
    elif fmt == "xlsx":
        back = pd.read_excel(out, dtype={"id": str})
    else:
        back = pd.read_stata(out)
        with pd.io.stata.StataReader(out) as reader:
            value_labels = reader.value_labels()
            variable_labels = reader.variable_labels()
        assert {int(k): v for k, v in value_labels["label"].items()} == {
            1: "negative",
            2: "positive",
            3: "neutral",
        }
        assert result.label_codes == {1: "negative", 2: "positive", 3: "neutral"}
        # the id column is labelled with the user's own column name
        assert variable_labels["id"] == "document id (column tweet_id of the imported file)"
        raw_codes = pd.read_stata(out, convert_categoricals=False)["label"]
        assert raw_codes.iloc[0] == 1.0 and pd.isna(raw_codes.iloc[7])  # d00 negative, d07 invalid
    assert list(back.columns) == result.columns == list(COLUMNS)
    assert _labels(back) == EXPECTED
    assert list(back["status"]).count("invalid") == len(BOGUS)
    assert str(back["prompt_sha256"].iloc[0]) == str(export_frame(project, run_id)["prompt_sha256"].iloc[0])
    # the codebook and the provenance beside it; no temp files left behind
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(
        [out.name, f"{out.name}.codebook.yaml", f"{out.name}.provenance.json"]
    )


def test_dta_long_strings_and_odd_names(setup, tmp_path: Path) -> None:
    project, run_id = setup
    long_raw = "é" * 3000  # 6000 bytes: more than a str# variable holds
    with project.transaction() as s:
        doc = s.exec(select(Document).where(col(Document.doc_key) == KEYS[7])).one()
        a = s.exec(
            select(Annotation).where(col(Annotation.run_id) == run_id, col(Annotation.document_id) == doc.id)
        ).one()
        a.raw = long_raw
        s.add(a)
    out = tmp_path / "labels.dta"
    result = export_run(project, run_id, out, meta=True, text=True)
    assert "meta_source_type" in result.columns and all(len(c) <= 32 for c in result.columns)
    back = pd.read_stata(out)
    assert back.loc[back["id"] == KEYS[7], "raw"].iloc[0] == long_raw
    assert list(back["meta_source_type"][:2]) == ["0", "1"]  # metadata from a CSV is text
    assert back["text"].iloc[0] == "wordd00 sentence about a film"


def test_csv_imported_back_as_codes_gives_the_same_labels(setup, cli) -> None:
    project, run_id = setup
    res = cli("export", str(run_id), "--out", "labels.csv")
    assert res.code == 0, res
    res = cli("import", "codes", "labels.csv", "--coder", "reimported")
    assert res.code == 0, res
    assert f"{len(BOGUS)} blank cells skipped" in res.out  # invalid answers stay uncoded, never a label
    with project.transaction() as s:
        coder = s.exec(select(Coder).where(col(Coder.name) == "reimported")).one()
        rows = s.exec(
            select(Document.doc_key, Annotation.label)
            .join(Annotation, col(Annotation.document_id) == col(Document.id))
            .join(Run, col(Run.id) == col(Annotation.run_id))
            .where(col(Run.coder_id) == coder.id)
        ).all()
    assert dict(rows) == {k: v for k, v in EXPECTED.items() if v is not None}


def test_codebook_and_provenance_sidecars_without_secrets(setup, tmp_path: Path) -> None:
    project, run_id = setup
    with project.transaction() as s:
        run = s.get(Run, run_id)
        run.params = {**run.params, "api_key": "sk-very-secret", "headers": {"Authorization": "Bearer x"}}
        s.add(run)
        cb = s.get(CodebookVersion, run.codebook_id)
        book = stored_codebook(s, cb.name, cb.version)
    out = tmp_path / "labels.jsonl"
    result = export_run(project, run_id, out)
    assert Path(result.codebook_path).read_text(encoding="utf-8") == to_yaml(book)
    assert yaml.safe_load(Path(result.codebook_path).read_text(encoding="utf-8"))["name"] == "sentiment"
    text = Path(result.provenance_path).read_text(encoding="utf-8")
    assert "sk-very-secret" not in text and "Bearer" not in text
    record = json.loads(text)
    assert record["run"]["id"] == run_id and record["run"]["model"] == "openai-compatible/scripted"
    assert record["prompt"]["name"] == "zero-shot" and record["prompt"]["frozen_at"].endswith("Z")
    assert "{{" in record["prompt"]["template"]  # the template itself, for the replication package
    assert record["codebook"]["file"] == "labels.jsonl.codebook.yaml"
    assert record["rows"] == N and record["counts"]["invalid"] == len(BOGUS)
    assert list(record["columns"]) == list(COLUMNS) and record["validation"] is None


def test_split_and_repeat(setup, tmp_path: Path) -> None:
    project, run_id = setup
    dev = export_frame(project, run_id, split="dev")
    assert list(dev["id"]) == [k for k, s in zip(KEYS, SPLIT, strict=True) if s == "dev"]
    test = export_frame(project, run_id, split="test")
    assert len(test) == N - len(dev) and set(test["split"]) == {"test"}
    with pytest.raises(AnnotatorError, match=r"^repeat=1: run \d+ has repeats 0"):
        export_frame(project, run_id, repeat=1)
    with pytest.raises(AnnotatorError, match=r"^split='everything': use dev, test or all$"):
        export_frame(project, run_id, split="everything")
    # a gold import run: no answers on a split it has no codes on
    with project.transaction() as s:
        gold_run = s.exec(select(Run).where(col(Run.kind) == "gold")).one().id
        for d in s.exec(select(Document)).all():
            d.split = "test"
            s.add(d)
    gold = export_frame(project, gold_run)
    assert list(gold["label"]) == GOLD and gold["prompt"].isna().all() and set(gold["kind"]) == {"gold"}
    with pytest.raises(AnnotatorError, match="no answers on the dev split"):
        export_frame(project, gold_run, split="dev")


def test_repeats(project, tmp_path: Path) -> None:
    rows = "".join(f'{k},"word{k} sentence about a film"\n' for k in KEYS[:6])
    import_documents(project, write(tmp_path / "docs.csv", "id,text\n" + rows))
    with project.transaction() as s:
        for d in s.exec(select(Document)).all():
            d.split = "dev"
            s.add(d)
    with ScriptedServer() as server:
        run_id = runner.label(
            project,
            RunRequest(
                prompt="sentiment/zero-shot.v1",
                model="openai-compatible/s",
                base_url=server.base_url,
                repeats=2,
            ),
        ).run_id
    assert len(export_frame(project, run_id)) == 6
    assert set(export_frame(project, run_id, repeat=1)["repeat"]) == {1}
    both = export_frame(project, run_id, repeat=None)
    assert len(both) == 12 and list(both["repeat"][:2]) == [0, 1]


def test_existing_file_is_refused_unless_forced(setup, cli, tmp_path: Path) -> None:
    _project, run_id = setup
    out = tmp_path / "labels.csv"
    assert cli("export", str(run_id), "--out", str(out)).code == 0
    out.write_text("mine\n")
    res = cli("export", str(run_id), "--out", str(out))
    assert (
        res.code == 2 and "already exists; pass --force" in res.err and len(res.err.strip().splitlines()) == 1
    )
    assert out.read_text() == "mine\n"
    res = cli("export", str(run_id), "--out", str(out), "--force")
    assert res.code == 0, res
    assert out.read_text().startswith("id,label,")
    # a sidecar left from an earlier export counts too
    other = tmp_path / "other.csv"
    Path(str(other) + ".provenance.json").write_text("{}")
    res = cli("export", str(run_id), "--out", str(other))
    assert res.code == 2 and "other.csv.provenance.json already exists; pass --force" in res.err
    assert not other.exists() and not Path(str(other) + ".codebook.yaml").exists()
    assert Path(str(other) + ".provenance.json").read_text() == "{}"


def test_a_refused_export_writes_no_sidecar(setup, cli, tmp_path: Path) -> None:
    """Every path (the export and its sidecars) is checked before anything is written."""
    _project, run_id = setup
    out = tmp_path / "labels.dta"
    out.write_bytes(b"mine")
    before = sorted(p.name for p in tmp_path.iterdir())
    res = cli("export", str(run_id), "--out", str(out))
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1
    assert f"{out} already exists; pass --force to replace it" in res.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before and out.read_bytes() == b"mine"
    # forced: the export and both sidecars, no temporary file left
    assert cli("export", str(run_id), "--out", str(out), "--force").code == 0
    assert pd.read_stata(out)["id"].iloc[0] == KEYS[0]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert {"labels.dta.codebook.yaml", "labels.dta.provenance.json"} <= set(names)
    assert not [n for n in names if n.endswith(".tmp")]


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_export_files_follow_theumask(setup, tmp_path: Path, mask: int) -> None:
    """Files to share are ordinary files (0666 less the umask), not private 0600 temp files; --force too."""
    project, run_id = setup
    folder = tmp_path / f"shared-{mask:o}"
    folder.mkdir()
    with umask(mask):
        for fmt in ("csv", "tsv", "jsonl", "parquet", "xlsx", "dta"):
            out = folder / f"labels.{fmt}"
            result = export_run(project, run_id, out)
            export_run(project, run_id, out, overwrite=True)  # a replaced file too
            for path in (out, Path(result.codebook_path or ""), Path(result.provenance_path)):
                assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, (fmt, path.name)
    assert len(list(folder.iterdir())) == 18


def test_nothing_half_written(setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import annotator.services.export as export_mod

    project, run_id = setup
    out = tmp_path / "labels.parquet"
    out.write_bytes(b"old")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_mod, "_provenance", broken)
    with pytest.raises(
        AnnotatorError, match=r"cannot write .*labels\.parquet\.provenance\.json: No space left on device"
    ):
        export_run(project, run_id, out, overwrite=True)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("labels", ".labels"))) == [
        "labels.parquet"
    ]


def test_bad_inputs_one_line_exit_2(setup, cli, tmp_path: Path) -> None:
    _project, run_id = setup
    (tmp_path / "afile").write_text("x")
    cases = [
        (["999", "--out", "x.csv"], "no run 999"),
        (["seven", "--out", "x.csv"], "'seven' is not a run id"),
        ([str(run_id), "--out", "x.txt"], "cannot tell the format from '.txt'"),
        ([str(run_id), "--out", "x.csv", "--format", "sav"], "--format sav: use csv"),
        ([str(run_id), "--out", "x.csv", "--format", "dta"], "--format dta: the suffix of x.csv says csv"),
        ([str(run_id), "--out", str(tmp_path / "nope" / "x.csv")], "does not exist; create it first"),
        ([str(run_id), "--out", str(tmp_path / "afile" / "x.csv")], "is not a folder"),
        ([str(run_id), "--out", str(tmp_path)], "is a folder; give a file name"),
        ([str(run_id), "--out", "x.csv", "--split", "train"], "--split train: use dev, test or all"),
        ([str(run_id), "--out", "x.csv", "--repeat", "first"], "--repeat 'first'"),
        ([str(run_id), "--out", "x.csv", "--validated-only"], "needs a threshold"),
        ([str(run_id), "--out", "x.csv", "--min-f1", "80"], "--min-f1 80.0: give a number between 0 and 1"),
    ]
    for args, message in cases:
        res = cli("export", *args)
        assert res.code == 2, (args, res)
        assert message in res.err and len(res.err.strip().splitlines()) == 1, (args, res)
    assert not list(Path.cwd().glob("x.*"))
    # --format names the format of a file without a suffix
    assert cli("export", str(run_id), "--out", "labels", "--format", "jsonl").code == 0
    assert json.loads(Path("labels").read_text().splitlines()[0])["id"] == KEYS[0]


def test_min_f1_gate(setup, cli, tmp_path: Path) -> None:
    project, run_id = setup
    res = cli("export", str(run_id), "--out", "v.csv", "--validated-only", "--min-f1", "0.5")
    assert res.code == 2 and "no validation on the test split" in res.err
    assert f"annotator validate --gold critics --split test --runs {run_id}" in res.err
    figures = validate(project, "critics", split="test", n_boot=100, seed=1).runs[0]
    f1 = figures["macro_f1"]
    assert f1["low"] < f1["estimate"] < 0.95
    # below the threshold: refused, with the figures, and nothing written
    res = cli("export", str(run_id), "--out", "v.csv", "--min-f1", "0.95")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1
    assert f"macro F1 on the test split {f1['estimate']:.3f} [{f1['low']:.3f}, {f1['high']:.3f}]" in res.err
    assert "point estimate is below the threshold 0.95" in res.err and not Path("v.csv").exists()
    # between the lower bound and the estimate: the point estimate passes, --conservative refuses
    mid = round((f1["low"] + f1["estimate"]) / 2, 4)
    res = cli("export", str(run_id), "--out", "v.csv", "--validated-only", "--min-f1", str(mid), "--json")
    assert res.code == 0, res
    summary = json.loads(res.out)
    (check,) = summary["validation"]["checks"]
    assert check["passed"] and check["compared"] == "estimate" and check["gold"] == "critics"
    assert (
        json.loads(Path("v.csv.provenance.json").read_text())["validation"]["checks"][0]["threshold"] == mid
    )
    res = cli("export", str(run_id), "--out", "w.csv", "--min-f1", str(mid), "--conservative")
    assert res.code == 2 and "lower end of the 95% interval is below" in res.err
    # answers newer than the validation: refused until validated again
    with project.transaction() as s:
        a = s.exec(select(Annotation).where(col(Annotation.run_id) == run_id)).first()
        a.created_at = a.created_at + timedelta(days=1)
        s.add(a)
    with pytest.raises(AnnotatorError, match=r"newer .* than its stored figures"):
        check_validation(project, run_id, min_f1=0.1)


def _store_agreement(project, result: dict) -> int:
    """An agreement result as `annotator agreement --split test` stores it (the gate reads only the row)."""
    from annotator.store.models import Metric

    with project.transaction() as s:
        row = Metric(kind="agreement", split="test", params={"level": "nominal"}, result=result)
        s.add(row)
        s.flush()
        return row.id


def _vs_majority(estimate, low=None, high=None, n_units=30, reason=None) -> dict:
    return {"estimate": estimate, "low": low, "high": high, "n_units": n_units, "reason": reason}


def test_min_alpha_gate_reads_alpha_vs_majority(setup, cli) -> None:
    """The gate compares the run's alpha with the human majority label, with its n; never the pooled alpha."""
    project, run_id = setup
    res = cli("export", str(run_id), "--out", "a.dta", "--min-alpha", "0.5")
    assert res.code == 2 and "annotator agreement --split test" in res.err
    entry = {
        "run_id": run_id,
        "repeat": 0,
        "alpha_with_humans": {"estimate": 0.95, "low": 0.9, "high": 0.99},  # pooled: high whatever the run
        "alpha_vs_majority": _vs_majority(0.62, 0.5, 0.74, n_units=31),
    }
    metric_id = _store_agreement(project, {"level": "nominal", "runs": [entry]})
    res = cli("export", str(run_id), "--out", "a.dta", "--min-alpha", "0.7")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1 and not Path("a.dta").exists()
    assert (
        "Krippendorff's alpha with the human majority label on the test split 0.620 [0.500, 0.740]" in res.err
    )
    assert f"agreement metric {metric_id}, nominal, n = 31 units" in res.err
    assert "point estimate is below the threshold 0.7" in res.err
    res = cli("export", str(run_id), "--out", "a.dta", "--min-alpha", "0.6", "--json")
    assert res.code == 0, res
    (check,) = json.loads(res.out)["validation"]["checks"]
    assert (
        check["passed"] and check["estimate"] == 0.62 and check["n"] == 31 and check["metric_id"] == metric_id
    )
    res = cli("export", str(run_id), "--out", "b.dta", "--min-alpha", "0.6", "--conservative")
    assert res.code == 2 and "lower end of the 95% interval is below" in res.err
    # too few units: refused with the reason, whatever the threshold
    entry["alpha_vs_majority"] = _vs_majority(
        None, n_units=12, reason="too few units (12; at least 30 needed)"
    )
    _store_agreement(project, {"level": "nominal", "runs": [entry]})
    res = cli("export", str(run_id), "--out", "c.dta", "--min-alpha", "0.1")
    assert res.code == 2 and "is not a number: too few units (12; at least 30 needed)" in res.err
    assert "(n = 12, fewer than 30)" in res.err and not Path("c.dta").exists()
    # below 30 units but a number (a lower --min-units): still gates, and says so
    entry["alpha_vs_majority"] = _vs_majority(0.8, 0.6, 0.9, n_units=20)
    _store_agreement(project, {"level": "nominal", "runs": [entry]})
    res = cli("export", str(run_id), "--out", "d.dta", "--min-alpha", "0.7")
    assert res.code == 0, res
    assert "units (n = 20, fewer than 30)" in " ".join(res.out.split())


def test_min_alpha_refuses_old_agreement_rows(setup, cli) -> None:
    """A row stored before alpha_vs_majority existed has only the pooled alpha: refused, never gated on."""
    project, run_id = setup
    old = {"run_id": run_id, "repeat": 0, "alpha_with_humans": {"estimate": 0.9, "low": 0.85, "high": 0.95}}
    metric_id = _store_agreement(project, {"level": "nominal", "runs": [old]})
    res = cli("export", str(run_id), "--out", "a.csv", "--min-alpha", "0.5")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1 and not Path("a.csv").exists()
    assert f"agreement metric {metric_id} predates the run's alpha with the human majority label" in res.err
    assert "run `annotator agreement --split test` again" in res.err


def test_min_alpha_gate_after_a_real_agreement(setup, cli, tmp_path: Path) -> None:
    """End to end: `agreement` then the gate, on the figure agreement stores for the run."""
    project, run_id = setup
    alice = list(GOLD)
    alice[1] = "negative"
    _import(project, tmp_path, "alice", alice)
    _import(project, tmp_path, "bob", GOLD)
    result = agreement(project, split="test", n_boot=50)
    (entry,) = [r for r in result.runs if r["run_id"] == run_id]
    if "alpha_vs_majority" not in entry:  # agreement not yet storing the run-vs-majority alpha
        res = cli("export", str(run_id), "--out", "a.dta", "--min-alpha", "0.5")
        assert res.code == 2 and "run `annotator agreement --split test` again" in res.err
        return
    e = entry["alpha_vs_majority"]
    if e["estimate"] is None:
        res = cli("export", str(run_id), "--out", "a.dta", "--min-alpha", "0.1")
        assert res.code == 2 and e["reason"] in res.err
        return
    alpha = e["estimate"]
    res = cli("export", str(run_id), "--out", "a.dta", "--min-alpha", str(min(1.0, round(alpha + 0.01, 3))))
    assert res.code == 2 and f"human majority label on the test split {alpha:.3f}" in res.err
    res = cli("export", str(run_id), "--out", "a.dta", "--min-alpha", str(max(0.0, round(alpha - 0.01, 3))))
    assert res.code == 0, res
    assert "reaches the threshold" in res.out and "label codes (Stata value labels): 1 = negative" in res.out


# -- the gate on a sampled run: figures on the gold items the run was asked (issue 10) -----------------------

BIG = 600
BIG_KEYS = [f"k{i:03d}" for i in range(BIG)]
BIG_GOLD = ["negative" if i % 3 == 0 else "positive" for i in range(BIG)]
BIG_MODEL = [
    ("positive" if g == "negative" else "negative") if i % 10 == 0 else g for i, g in enumerate(BIG_GOLD)
]


def _big_sampled(project, tmp_path: Path, n: int) -> tuple[int, list[int]]:
    """Gold on 600 test documents and a real `--sample n` LLM run; the run id and its asked documents."""
    from annotator.store.asked import asked_sets

    import_docs(project, tmp_path, word_texts(BIG_KEYS), split="test")
    gold = "".join(f"{k},{lab}\n" for k, lab in zip(BIG_KEYS, BIG_GOLD, strict=True))
    import_codes(project, write(tmp_path / "gold.csv", "id,label\n" + gold), coder="critics", kind="gold")
    freeze_prompt(project, "sentiment/zero-shot.v1")
    run_id = copy_run(project, BIG_KEYS, BIG_MODEL, split="test", sample=n, seed=2)
    with project.transaction() as s:
        ids = asked_sets(s, [run_id])[run_id]
        asked = sorted(int(d.doc_key[1:]) for d in s.exec(select(Document)).all() if d.id in ids)
    return run_id, asked


def test_min_f1_gate_uses_the_asked_figure(project, cli, tmp_path: Path) -> None:
    from sklearn.metrics import f1_score

    run_id, asked = _big_sampled(project, tmp_path, 30)
    assert len(asked) == 30
    y_true = [BIG_GOLD[i] for i in asked]
    y_pred = [BIG_MODEL[i] for i in asked]
    real = f1_score(y_true, y_pred, labels=["negative", "positive"], average="macro")
    # the old figure: every gold item of the split, the 570 never asked counted as missing errors
    old = f1_score(
        BIG_GOLD,
        [BIG_MODEL[i] if i in set(asked) else "(invalid/missing)" for i in range(BIG)],
        labels=["negative", "positive"],
        average="macro",
    )
    assert old < 0.2 < 0.6 <= real
    r = validate(project, "critics", split="test", n_boot=100, seed=1).runs[0]
    assert r["n_gold"] == 30 and r["macro_f1"]["estimate"] == pytest.approx(real, abs=1e-6)
    res = cli("export", str(run_id), "--out", "v.csv", "--min-f1", "0.6", "--json")
    assert res.code == 0, res
    (check,) = json.loads(res.out)["validation"]["checks"]
    assert check["passed"] and check["n"] == 30 and check["n_gold"] == 30 and not check["few"]
    assert "n = 30 gold items the run was asked" in check["line"]
    assert check["accuracy"]["method"] == "wilson"
    # an old stored row (every split gold item, never-asked ones as missing) is not gated on
    with project.transaction() as s:
        row = s.get(Metric, r["metric_id"])
        result = dict(row.result)
        result.pop("scope")
        result["run"] = result["run"] | {"n_gold": BIG, "n_missing": BIG - 30}
        row.result = result
        s.add(row)
    res = cli("export", str(run_id), "--out", "w.csv", "--min-f1", "0.1")
    assert (
        res.code == 2 and "computed before validate scored each run on the gold items it was asked" in res.err
    )
    assert f"annotator validate --gold critics --split test --runs {run_id}` again" in res.err


def test_min_f1_gate_on_fewer_than_30_items_says_so(project, cli, tmp_path: Path) -> None:
    run_id, _ = _big_sampled(project, tmp_path, 12)
    with project.transaction() as s:  # one wrong answer, whatever the sample drew
        a = s.exec(select(Annotation).where(col(Annotation.run_id) == run_id)).first()
        a.label = "negative" if a.label == "positive" else "positive"
        s.add(a)
    r = validate(project, split="test", n_boot=100, seed=1).runs[0]
    assert r["n_gold"] == 12
    f1 = r["macro_f1"]["estimate"]
    assert 0.05 < f1 < 0.99
    res = cli("export", str(run_id), "--out", "v.csv", "--min-f1", str(max(0.0, round(f1 - 0.05, 3))))
    assert res.code == 0, res
    assert "(n = 12, fewer than 30)" in " ".join(res.out.split())
    res = cli("export", str(run_id), "--out", "w.csv", "--min-f1", str(min(1.0, round(f1 + 0.01, 3))))
    assert res.code == 2 and "(n = 12, fewer than 30)" in res.err and not Path("w.csv").exists()


def test_cli_summary(setup, cli) -> None:
    _project, run_id = setup
    res = cli("export", f"run:{run_id}", "--out", "labels.dta", "--split", "test", "--json")
    assert res.code == 0, res
    data = json.loads(res.out)
    n_test = SPLIT.count("test")
    assert data["n_rows"] == n_test and data["format"] == "dta" and data["split"] == "test"
    assert data["label_codes"] == {"1": "negative", "2": "positive", "3": "neutral"}
    assert data["codebook_path"].endswith("labels.dta.codebook.yaml")
    res = cli("export", str(run_id), "--out", "labels.csv")
    assert res.code == 0, res
    assert f"{N} rows of run {run_id}" in res.out and f"{len(BOGUS)} invalid" in res.out
    assert "provenance: labels.csv.provenance.json" in res.out


def test_the_result_is_typed_and_its_json_is_what_the_cli_prints(setup, cli, tmp_path: Path) -> None:
    project, run_id = setup
    result = export_run(project, run_id, tmp_path / "typed.dta", split="test")
    assert isinstance(result, ExportResult)
    data = result.to_json()
    assert list(data) == EXPORT_KEYS and data["columns"] == result.columns == list(COLUMNS)
    assert json.loads(json.dumps(data))["label_codes"] == {"1": "negative", "2": "positive", "3": "neutral"}
    res = cli("export", str(run_id), "--out", str(tmp_path / "cli.dta"), "--split", "test", "--json")
    assert res.code == 0, res
    printed = json.loads(res.out)
    assert list(printed) == EXPORT_KEYS
    paths = ("path", "codebook_path", "provenance_path")
    expected = json.loads(json.dumps(data, default=str))
    assert {k: v for k, v in printed.items() if k not in paths} == {
        k: v for k, v in expected.items() if k not in paths
    }
    provenance = json.loads(Path(result.provenance_path).read_text(encoding="utf-8"))
    assert list(provenance["columns"]) == result.columns  # the provenance names the columns as written


def test_a_refusal_names_the_parameter_as_its_caller_spelled_it(setup, cli, tmp_path: Path) -> None:
    """The service names its own parameters (split='train', overwrite=True); the CLI prints its flags."""
    project, run_id = setup
    with pytest.raises(InputError) as caught:
        export_run(project, run_id, tmp_path / "x.csv", split="train")
    assert str(caught.value) == "split='train': use dev, test or all" and "--" not in str(caught.value)
    res = cli("export", str(run_id), "--out", str(tmp_path / "x.csv"), "--split", "train")
    assert res.code == 2 and "--split train: use dev, test or all" in res.err
    out = tmp_path / "y.csv"
    out.write_text("mine\n")
    with pytest.raises(InputError, match="already exists; pass overwrite=True to replace it"):
        export_run(project, run_id, out)
    res = cli("export", str(run_id), "--out", str(out))
    assert (
        res.code == 2
        and f"{out} already exists; pass --force to replace it, or choose another --out" in res.err
    )
    with pytest.raises(
        InputError, match=r"^validated_only=True needs a threshold: add min_f1=0\.8 or min_alpha=0\.7$"
    ):
        export_run(project, run_id, tmp_path / "z.csv", validated_only=True)
    res = cli("export", str(run_id), "--out", str(tmp_path / "z.csv"), "--validated-only")
    assert "--validated-only needs a threshold: add --min-f1 0.8 or --min-alpha 0.7" in res.err
    with pytest.raises(
        InputError, match=r"^min_alpha=1\.5: give a number between 0 and 1, e\.g\. min_alpha=0\.8$"
    ):
        check_validation(project, run_id, min_alpha=1.5)
    assert out.read_text() == "mine\n" and not (tmp_path / "x.csv").exists()
