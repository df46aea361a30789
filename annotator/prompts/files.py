"""Template files on disk: load, list, copy to a new version, diff."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from annotator.errors import TemplateError
from annotator.prompts.refs import _FILE_RE, _NAME, PromptRef, _display, parse_ref
from annotator.prompts.template import PromptTemplate, parse_prompt
from annotator.textfiles import DecodeFailure, read_text


def _read(path: Path) -> str:
    """The template's text (UTF-8, a BOM allowed); TemplateError naming the byte that is not."""

    def not_utf8(failure: DecodeFailure) -> TemplateError:
        return TemplateError(
            f"{_display(path)}: not UTF-8 text (byte 0x{failure.byte:02x} at offset {failure.offset}, "
            f"line {failure.line}) — save the file as UTF-8"
        )

    return read_text(path, not_utf8)


def load_prompt(prompts_dir: Path, ref: str | PromptRef) -> PromptTemplate:
    """Read, parse and compile a template, so syntax errors surface at load, not mid-run."""
    ref = ref if isinstance(ref, PromptRef) else parse_ref(ref)
    path = Path(prompts_dir) / ref.filename
    if not path.is_file():
        known = [r for r in list_prompts(prompts_dir) if r.codebook == ref.codebook]
        same = [f"v{r.version}" for r in known if r.name == ref.name]
        if same:
            hint = f"versions of {ref.codebook}/{ref.name}: {', '.join(same)}"
        elif known:
            hint = f"prompts of {ref.codebook}: {', '.join(map(str, known))}"
        else:
            hint = f"no prompts for codebook {ref.codebook!r}; create one with `annotator prompt new`"
        raise TemplateError(f"{_display(path)} does not exist — {hint}")
    return parse_prompt(_read(path), ref, path)


def list_prompts(prompts_dir: Path) -> list[PromptRef]:
    """Every template file that follows the naming scheme (no parsing: a broken file still shows)."""
    refs = []
    root = Path(prompts_dir)
    if not root.is_dir():
        return []
    for path in root.glob("*/*.jinja"):
        match = _FILE_RE.match(path.name)
        if match and re.fullmatch(_NAME, path.parent.name) and path.is_file():
            refs.append(PromptRef(path.parent.name, match[1], int(match[2])))
    return sorted(refs, key=lambda r: (r.codebook, r.name, r.version))


def new_prompt(prompts_dir: Path, name: str, from_ref: str | PromptRef) -> PromptRef:
    """Copy a template to a new version or name; never overwrites, so a registered version stays intact."""
    source = load_prompt(prompts_dir, from_ref)
    match = re.fullmatch(rf"(?:({_NAME})/)?({_NAME})(?:\.v([1-9][0-9]*))?", name.strip())
    if not match:
        raise TemplateError(f"{name!r} is not a prompt name: write NAME, CODEBOOK/NAME or CODEBOOK/NAME.vN")
    codebook, base = match[1] or source.ref.codebook, match[2]
    if match[3]:
        ref = PromptRef(codebook, base, int(match[3]))
    else:
        versions = [r.version for r in list_prompts(prompts_dir) if (r.codebook, r.name) == (codebook, base)]
        ref = PromptRef(codebook, base, max(versions, default=0) + 1)
    path = Path(prompts_dir) / ref.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8", newline="\n") as handle:
            handle.write(source.text)
    except FileExistsError:
        raise TemplateError(
            f"{_display(path)} already exists — prompt versions are never overwritten; "
            f"give a new version or just the name {ref.codebook}/{ref.name} for the next free one"
        ) from None
    return ref


def prompt_diff(a: PromptTemplate, b: PromptTemplate) -> str:
    """A unified diff of two templates' texts, named by their refs ('' when equal)."""
    out = []
    lines_a, lines_b = a.text.splitlines(keepends=True), b.text.splitlines(keepends=True)
    for line in difflib.unified_diff(lines_a, lines_b, fromfile=str(a.ref), tofile=str(b.ref)):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
