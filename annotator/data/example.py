"""Import the bundled Hutto & Gilbert (2014) data as a ready-made coding project.

Each sentence becomes a document. The critics' fresh/rotten label becomes the gold coder ``critics``
(rotten-tomatoes only). The crowd's -4..+4 ratings are not aligned to persons across items, so the k-th
rating of every item becomes pseudo-coder ``crowd-k`` (k = 1..raters; an item with fewer ratings has no
code from the later pseudo-coders). Each rating's sign is its label: > 0 positive, < 0 negative, and 0 the
sentiment codebook's uncertain label ``neutral`` ("neither"); the rating itself is kept as the code's raw
value.
"""

from __future__ import annotations

from dataclasses import dataclass

from annotator.codebook import Codebook, load_codebook
from annotator.data.corpus import NewCode, NewDocument, add_codes, add_documents, document_ids
from annotator.data.datasets import load_example
from annotator.errors import InputError, arg
from annotator.project import Project, copy_example
from annotator.resources import example_codebooks_dir
from annotator.store.models import utcnow
from annotator.store.registry import register_codebook

PREFIXES = {"rotten-tomatoes": "rt", "tweets": "tw", "nyt-editorials": "nyt", "amazon-reviews": "amz"}
MAX_RATERS = 29
CODEBOOK = "sentiment"


@dataclass
class ExampleImported:
    name: str
    documents_added: int
    documents_unchanged: int
    codes_added: int
    coders: list[str]
    files_copied: list[str]


LONG_FROM_WORDS = 21  # the example's `length` column: "long" from this many words on


def rating_label(rating: int, codebook: Codebook) -> str:
    if rating > 0:
        return "positive"
    if rating < 0:
        return "negative"
    assert codebook.uncertain is not None
    return codebook.uncertain.name


def import_example(
    project: Project, name: str = "rotten-tomatoes", n: int | None = None, seed: int = 0, raters: int = 15
) -> ExampleImported:
    if not 1 <= raters <= MAX_RATERS:
        raise InputError(f"{arg('raters', raters)}: choose 1 to {MAX_RATERS} crowd pseudo-coders")
    data = load_example(name, n=n, seed=seed)
    project_file = project.codebook_path(CODEBOOK)
    copy_needed = not project_file.exists()
    codebook = load_codebook(example_codebooks_dir() / f"{CODEBOOK}.yaml" if copy_needed else project_file)
    if codebook.uncertain is None or {"positive", "negative"} - set(codebook.label_names):
        raise InputError(
            f"{project_file}: the example needs labels positive and negative and an uncertain label (for 0 "
            "ratings); restore the shipped codebook with `annotator init --example sentiment` in a new folder"
        )
    name = data.name  # the canonical spelling ('Rotten_Tomatoes' is 'rotten-tomatoes')
    prefix = PREFIXES.get(name, name)
    frame = data.documents
    keys = [f"{prefix}-{i}" for i in frame["id"]]
    docs = [
        NewDocument(
            key=key,
            text=text,
            where=f"example {name} id {orig}",
            meta={
                "source": name,
                "crowd_mean": round(float(mean), 4),
                "crowd_sd": round(float(sd), 4),
                "n_ratings": int(nr),
                # a grouping a paper might compare (`annotator estimate --by length`): up to 20 words, or more
                "length": "long" if len(str(text).split()) >= LONG_FROM_WORDS else "short",
            }
            | ({"critics": data.critics[i]} if data.critics else {}),
        )
        for i, (key, orig, text, mean, sd, nr) in enumerate(
            zip(
                keys,
                frame["id"],
                frame["text"],
                frame["crowd_mean"],
                frame["crowd_sd"],
                frame["n_ratings"],
                strict=True,
            )
        )
    ]
    source = {
        "file": f"example:{name}",
        "sha256": "",
        "at": utcnow().isoformat(timespec="seconds"),
        "n": n,
        "seed": seed,
    }
    coders: list[str] = []
    codes_added = 0
    with project.transaction() as session:
        added, unchanged = add_documents(session, docs)
        row = register_codebook(session, codebook, str(project_file))
        doc_ids = document_ids(session)
        if data.critics is not None:
            codes = [
                NewCode(key=k, label=lab, raw=None, where=k)
                for k, lab in zip(keys, data.critics, strict=True)
            ]
            codes_added += add_codes(session, codebook, row, "critics", "gold", codes, source, doc_ids)[0]
            coders.append("critics")
        for k in range(raters):
            codes = [
                NewCode(key=key, label=rating_label(r[k], codebook), raw=str(r[k]), where=key)
                for key, r in zip(keys, data.ratings, strict=True)
                if len(r) > k
            ]
            if codes:
                codes_added += add_codes(
                    session, codebook, row, f"crowd-{k + 1}", "human", codes, source, doc_ids
                )[0]
                coders.append(f"crowd-{k + 1}")
    copied = (
        [str(p.relative_to(project.root)) for p in copy_example(CODEBOOK, project.root)]
        if copy_needed
        else []
    )
    return ExampleImported(
        name=name,
        documents_added=added,
        documents_unchanged=unchanged,
        codes_added=codes_added,
        coders=coders,
        files_copied=copied,
    )
