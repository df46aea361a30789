"""A user's text file read as UTF-8 (or a given encoding), so that a byte that cannot be decoded is named by
file, line and byte offset in the caller's own error.

One decoding loop serves both ways of reading: `read_text` for a file read whole (a codebook, a prompt
template) and `find_decode_failure` for a file streamed block by block (a data table), which cannot tell the
line itself and looks for it in a second pass, only on that error.
"""

from __future__ import annotations

import codecs
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

_BLOCK = 1 << 20


@dataclass(frozen=True)
class DecodeFailure:
    """Where a file stops being valid text."""

    path: Path
    line: int  # 1-based line of the byte
    offset: int  # the byte's offset from the start of the file (a byte order mark counted)
    byte: int  # the byte itself, e.g. 0xe9
    encoding: str  # the codec that refused it, as Python names it (e.g. "utf-8")


def _decode(
    path: Path, blocks: Iterable[bytes], encoding: str, keep: bool
) -> tuple[str, DecodeFailure | None]:
    """The text of ``blocks`` (a file's bytes in order; ``keep``: kept, else only checked), or where decoding
    stops."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    parts: list[str] = []
    offset = newlines = 0
    for block in itertools.chain(blocks, [b""]):
        pending = decoder.getstate()[0]  # bytes of a character that the last block cut
        try:
            text = decoder.decode(block, final=not block)
        except UnicodeDecodeError as exc:
            data = exc.object if isinstance(exc.object, bytes) else pending + block
            skipped = len(pending) + len(block) - len(data)  # e.g. a byte order mark already read
            line = newlines + data[: exc.start].count(b"\n") - pending.count(b"\n") + 1
            at = offset - len(pending) + skipped + exc.start
            return "", DecodeFailure(path, line, at, data[exc.start], exc.encoding)
        if keep:
            parts.append(text)
        offset += len(block)
        newlines += block.count(b"\n")
    return "".join(parts), None


def read_text(
    path: str | Path, error: Callable[[DecodeFailure], Exception], encoding: str = "utf-8-sig"
) -> str:
    """A file's text (UTF-8 by default, a byte order mark allowed). A byte that cannot be decoded raises
    ``error(failure)``, the caller's own error built from where it is; OSError (a missing file, say) passes
    through for the caller to word."""
    path = Path(path)
    text, failure = _decode(path, [path.read_bytes()], encoding, keep=True)
    if failure is not None:
        raise error(failure) from None
    return text


def find_decode_failure(path: str | Path, encoding: str = "utf-8-sig") -> DecodeFailure | None:
    """Where a file stops being valid text in ``encoding``, read block by block (the memory of one block);
    None when the whole file decodes."""
    path = Path(path)
    with path.open("rb") as fh:
        return _decode(path, iter(lambda: fh.read(_BLOCK), b""), encoding, keep=False)[1]
