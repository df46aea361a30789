"""Writing the files a user shares (an export and its sidecars, the methods report): one rule for all.

- **Mode**: an ordinary file, ``0666 & ~umask`` (0644 under the usual umask 022), as ``cp`` or an editor
  makes it. The temporary file is created with mode 0666 and the kernel applies the umask, so the umask is
  never read or changed (``tempfile.mkstemp`` makes 0600 files, which suits secrets, not a shared export).
- **Atomic**: each file is written to a temporary file in its target folder, flushed to disk, and the set is
  moved into place with ``os.replace`` only when every file is complete. A crash or an error never leaves a
  half-written file, nor a new file without its sidecars; the temporary files are removed.
- **Overwrite**: an existing file is not replaced unless ``overwrite`` (the CLI's ``--force``): every target
  is checked before anything is written, and checked again just before the files are moved into place. The
  refusal is one line that names the file.

Callers give the error class the user sees (``InputError`` for export, ``ReportError`` for the report).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

from annotator.errors import AnnotatorError, InputError, arg, named

Writer = Callable[[Path], object]  # fills the (already created, empty) temporary file at the path it gets


def check_targets(
    paths: Sequence[Path], overwrite: bool, error: type[AnnotatorError] = InputError, example: str = "out.csv"
) -> None:
    """Refuse (one line, ``error``) unless every path can be written; the first is the file the user named.

    ``example`` is the file name suggested when the user named a folder.
    """
    first = Path(paths[0])
    if first.is_dir():
        raise error(f"{first} is a folder; give a file name, e.g. {arg('out', str(first / example))}")
    for folder in dict.fromkeys(Path(p).parent for p in paths):
        if not folder.exists():
            raise error(f"folder {folder} does not exist; create it first or choose another {named('out')}")
        if not folder.is_dir():
            raise error(f"{folder} is not a folder; choose another {named('out')}")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise error(f"folder {folder} is not writable; choose another {named('out')}")
    for p in map(Path, paths):
        if not os.path.lexists(p):
            continue
        if not overwrite:
            raise error(
                f"{p} already exists; pass {arg('overwrite')} to replace it, or choose another {named('out')}"
            )
        if p.is_dir():
            raise error(f"{p} is a folder; move it away or choose another {named('out')}")
        if not os.access(p, os.W_OK):
            raise error(f"{p} exists and is not writable; choose another {named('out')}")


def _create_temp(target: Path) -> Path:
    """A new empty file beside ``target``, mode 0666 less the umask (the kernel applies it)."""
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(target.parent))


def _sync(path: Path) -> None:
    """Flush a written file to disk, so that the file moved into place is complete after a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_files(
    files: Sequence[tuple[Path, Writer]], overwrite: bool, error: type[AnnotatorError] = InputError
) -> None:
    """Write every file (see the module docstring), all or nothing.

    They are moved into place in reverse order, so the first file (the export itself) lands last: its presence
    means its sidecars are there too. ``check_targets`` should have been called before the work that
    produces the contents; it is called again here, before anything is moved.
    """
    temps: list[tuple[Path, Path]] = []
    target = Path(files[0][0])
    try:
        for target, write in files:
            target = Path(target)
            try:
                tmp = _create_temp(target)
            except OSError as exc:
                raise error(
                    f"cannot write in {target.parent}: {exc.strerror or exc}; choose another {named('out')}"
                ) from None
            temps.append((tmp, target))
            write(tmp)
            _sync(tmp)
        check_targets([t for _, t in temps], overwrite, error)
        for tmp, target in reversed(temps):
            os.replace(tmp, target)
        _sync_folders({t.parent for _, t in temps})
    except OSError as exc:
        raise error(f"cannot write {target}: {exc.strerror or exc}; choose another {named('out')}") from None
    finally:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str, overwrite: bool, error: type[AnnotatorError] = InputError) -> None:
    """One text file (UTF-8, ``\\n`` line ends), written as ``write_files`` writes."""
    write_files([(path, lambda tmp: tmp.write_text(text, encoding="utf-8", newline="\n"))], overwrite, error)


def _sync_folders(folders: set[Path]) -> None:
    """Make the renames durable; a folder that cannot be opened for this (some file systems) is skipped."""
    for folder in folders:
        with contextlib.suppress(OSError):
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
