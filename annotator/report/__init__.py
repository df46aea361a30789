"""`annotator report`: a methods appendix of everything the project did, as one HTML or Markdown file.

The report reads the database and documents what was actually run: data and splits, codebook and prompt
versions (full text), models and parameters, every run, the stored agreement and validation results (the
latest of each, with the time it was computed), baselines, the stored estimates (`annotator estimate`: the
three-way shares with the design assumed, and the across-runs check), prompt freezing relative to the test
runs, cost and time, and software versions. It computes nothing new and writes nothing to the database.

The HTML file is self-contained (inline CSS and SVG figures, no script, no external address) and forbids
scripts and network loads through its Content-Security-Policy. The file is written as every file annotator
writes for a user to share (``annotator.services.export.files``): an existing file is replaced only with
``overwrite`` (``--force``), the mode follows the umask, and a failed report never leaves a half-written
file.
"""

from __future__ import annotations

from pathlib import Path

from annotator.errors import AnnotatorError, arg
from annotator.project import Project

FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}
FORMAT_NAMES = ("html", "md")


class ReportError(AnnotatorError):
    """The report cannot be written as asked (unknown format, a folder that is missing or not writable)."""


def resolve_format(out: Path, fmt: str | None) -> str:
    """The format named by ``fmt`` (html, md, markdown) or by the file's suffix."""
    by_suffix = FORMATS.get(out.suffix.lower())
    if fmt is not None:
        name = fmt.strip().lower().lstrip(".")
        name = {"markdown": "md", "htm": "html"}.get(name, name)
        if name not in FORMAT_NAMES:
            raise ReportError(f"{arg('fmt', fmt)}: use html or md")
        if by_suffix is not None and by_suffix != name:
            raise ReportError(
                f"{arg('fmt', fmt)} but {out.name} ends in {out.suffix}: drop {arg('fmt', fmt)} or name the file "
                f"report.{name}"
            )
        return name
    if by_suffix is None:
        what = f"suffix {out.suffix!r}" if out.suffix else "no suffix"
        raise ReportError(
            f"{out.name}: {what} does not say the format; name the file .html or .md, or pass "
            f"{arg('fmt', 'html')} or {arg('fmt', 'md')}"
        )
    return by_suffix


def default_out(fmt: str | None) -> Path:
    """report.html, or report.md with ``fmt`` md."""
    return Path(f"report.{resolve_format(Path('report'), fmt) if fmt is not None else 'html'}")


def report_text(project: Project, fmt: str = "html") -> str:
    """The report as a string (HTML or Markdown), secrets removed."""
    from .fmt import known_secrets, remove_secrets
    from .gather import gather
    from .render import render

    if fmt not in FORMAT_NAMES:
        raise ReportError(f"format {fmt!r}: use html or md")
    text = render(gather(project), fmt)
    return remove_secrets(text, known_secrets(project.root))


def build_report(project: Project, out: Path, fmt: str | None = None, overwrite: bool = False) -> Path:
    """Write the report to ``out`` (format from ``fmt`` or the suffix) and return its absolute path.

    An existing file is refused (``ReportError``, nothing written) unless ``overwrite``: the rule of every
    file annotator writes for a user to share (``annotator.services.export.files``).
    """
    from annotator.services.export.files import check_targets, write_text

    out = Path(out).expanduser()
    if out.is_dir():
        raise ReportError(f"{out} is a folder; give a file name, e.g. {arg('out', str(out / 'report.html'))}")
    name = resolve_format(out, fmt)
    out = out.resolve() if out.parent.exists() else out.absolute()
    check_targets([out], overwrite, ReportError, example="report.html")
    text = report_text(project, name)
    write_text(out, text, overwrite, ReportError)
    return out


__all__ = ["FORMATS", "ReportError", "build_report", "default_out", "report_text", "resolve_format"]
