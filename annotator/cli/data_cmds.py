"""import docs | codes | example, and split."""

from __future__ import annotations

from pathlib import Path

import typer

from annotator.cli.common import console, get_project, print_json

EXAMPLE_DATA = (
    "rotten-tomatoes",
    "tweets",
    "nyt-editorials",
    "amazon-reviews",
)  # annotator.data.datasets.EXAMPLES

import_app = typer.Typer(help="Bring documents and human codes into the project.", no_args_is_help=True)

FORMAT_HELP = "File format if the extension does not tell: csv, tsv, jsonl, parquet, xlsx."
MULTILINE_HELP = (
    "Accept CSV/TSV texts with many line breaks (over 20 in one text, or a multi-line text over 10,000 "
    "characters and 50 times the file's median row), which are otherwise refused as a likely stray quote."
)


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
    app.command("split")(split)


@import_app.command("docs")
def import_docs(
    file: Path = typer.Argument(..., help="CSV, TSV, JSONL, Parquet or XLSX file."),
    text: str = typer.Option("text", "--text", help="Column holding the text."),
    id: str = typer.Option("id", "--id", help="Column holding each document's unique id."),
    encoding: str | None = typer.Option(None, help="Text encoding of CSV/TSV/JSONL (default UTF-8)."),
    fmt: str | None = typer.Option(None, "--format", help=FORMAT_HELP),
    allow_multiline: bool = typer.Option(False, "--allow-multiline", help=MULTILINE_HELP),
) -> None:
    """Import documents; other columns are kept as metadata. Re-importing the same file adds nothing."""
    from annotator.services.corpus import import_documents

    result = import_documents(
        get_project(), file, text=text, id=id, encoding=encoding, fmt=fmt, allow_multiline=allow_multiline
    )
    console.print(f"{result.source}: {result.added} documents added, {result.unchanged} already there")
    if result.multiline:
        # rows and lines differ: say so, so that a merge of rows the guard let through can still be seen
        console.print(
            f"line breaks inside the text of {result.multiline:,} rows (the first at {result.first_multiline}): "
            f"{result.lines:,} lines read as {result.rows:,} rows"
        )


@import_app.command("codes")
def import_codes_cmd(
    file: Path = typer.Argument(..., help="CSV, TSV, JSONL, Parquet or XLSX file."),
    label: str = typer.Option("label", "--label", help="Column holding the code (a codebook label)."),
    id: str = typer.Option("id", "--id", help="Column holding the document id."),
    coder: str | None = typer.Option(None, "--coder", help="Name of the coder who made these codes."),
    coder_column: str | None = typer.Option(
        None, "--coder-column", help="Long format: column naming the coder of each row."
    ),
    codebook: str | None = typer.Option(
        None, "--codebook", help="Codebook the codes follow (default: the only one)."
    ),
    gold: bool = typer.Option(False, "--gold", help="These codes are a gold standard (e.g. expert labels)."),
    encoding: str | None = typer.Option(None, help="Text encoding of CSV/TSV/JSONL (default UTF-8)."),
    fmt: str | None = typer.Option(None, "--format", help=FORMAT_HELP),
    allow_multiline: bool = typer.Option(False, "--allow-multiline", help=MULTILINE_HELP),
) -> None:
    """Import human codes, checked against the codebook (nothing is imported if any label is unknown)."""
    from annotator.services.corpus import import_codes

    result = import_codes(
        get_project(),
        file,
        label=label,
        id=id,
        coder=coder,
        coder_column=coder_column,
        codebook=codebook,
        kind="gold" if gold else "human",
        encoding=encoding,
        fmt=fmt,
        allow_multiline=allow_multiline,
    )
    added = ", ".join(f"{name} {n}" for name, n in result.coders.items()) or "none"
    console.print(
        f"{result.source}: codes added ({result.codebook}): {added}; {result.unchanged} already there; "
        f"{result.blank} blank cells skipped"
    )


@import_app.command("example")
def import_example_cmd(
    name: str = typer.Argument("rotten-tomatoes", help=f"One of: {', '.join(EXAMPLE_DATA)}."),
    n: int | None = typer.Option(None, "--n", help="A seeded random sample of N sentences (default: all)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the sample."),
    raters: int = typer.Option(15, "--raters", help="Crowd pseudo-coders to create (1-29)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import the bundled Hutto & Gilbert (2014) sentences with crowd coders (and the critics' gold label)."""
    from annotator.services.corpus import import_example

    result = import_example(get_project(), name=name, n=n, seed=seed, raters=raters)
    if as_json:
        print_json(result.__dict__)
        return
    console.print(
        f"example {name}: {result.documents_added} documents added ({result.documents_unchanged} already there), "
        f"{result.codes_added} codes from {len(result.coders)} coders"
    )
    if result.files_copied:
        console.print(f"copied into the project: {', '.join(result.files_copied)}")


def split(
    test: float = typer.Option(
        ..., "--test", help="Share of documents held out for the test split, e.g. 0.3."
    ),
    seed: int = typer.Option(
        ..., "--seed", min=0, help="Random seed (stored, so the split can be reproduced)."
    ),
    stratify_by: str | None = typer.Option(None, "--stratify-by", help="Metadata column to stratify by."),
    stratify_by_coder: str | None = typer.Option(
        None, "--stratify-by-coder", help="Stratify by this coder's labels (e.g. a gold coder)."
    ),
    force: bool = typer.Option(False, "--force", help="Reassign an existing test split (recorded)."),
    new_only: bool = typer.Option(False, "--new-only", help="Assign only documents without a split yet."),
) -> None:
    """Assign every document to dev (to iterate on) or test (held out, never used for tuning)."""
    from annotator.services.corpus import make_split

    event = make_split(get_project(), test, seed, stratify_by, stratify_by_coder, force, new_only)
    how = f", stratified by {event.stratify}" if event.stratify else ""
    scope = " of the new documents" if new_only else ""
    console.print(f"split{scope} (seed {seed}{how}): dev {event.n_dev}, test {event.n_test}")
