"""The Hutto & Gilbert (2014) sentiment ground truth, bundled as worked examples.

Four domains of short texts, each rated by 15–99 anonymous crowd workers on an integer scale from
-4 (extremely negative) to +4 (extremely positive). The sentences of ``rotten-tomatoes`` come from
Pang & Lee's (2005) sentence polarity data, so each also has the critics' binary label (fresh/rotten),
which makes the set a two-gold-standard example: crowd intensity and expert polarity.

The data (``hutto_icwsm2014.zip`` next to this module) is ``additional_resources/hutto_ICWSM_2014`` of
the vaderSentiment 3.3.2 source distribution, MIT licence (``LICENSE.txt`` in the zip).

How the zip was made: the eleven files of that folder (the eight data files, ``LICENSE.txt``,
``README.md`` and the authors' ``_README_.txt``), unchanged and under their own names at the top of the
archive, were written in name order with ``zipfile.ZipFile.writestr``, each under a
``zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))`` with ``create_system = 3`` and
``external_attr = 0o644 << 16``, compressed with ``ZIP_LZMA``. The same input gives the same bytes
(sha256 6828c243d0955cb7fca0151f26fce18bce9b79487e3b46e3c1a105af431511a3, 1,237,214 bytes; the
sources total 5,111,947 bytes). ``ZIP_DEFLATED`` at level 9 gave 1,525,688 bytes and ``ZIP_BZIP2``
1,116,591 bytes but decompresses about three times slower than LZMA, so LZMA it is (reading every
member takes about 0.1 s).

File formats (see ``README.md`` in the zip): ``<domain>_GroundTruth.txt`` holds ``id``, mean rating
and text; ``<domain>_anonDataRatings.txt`` holds ``id``, mean, standard deviation and a Python-list
literal of the raw ratings. Both are tab-separated UTF-8 (one has a byte-order mark) with CRLF line
ends, no header and no quoting. Raters are anonymous and differ between items, so rating *k* of two
items need not come from one person: the ratings are exchangeable within an item, not a rater matrix.

Notes on the data:

- ``crowd_mean`` and ``crowd_sd`` are taken from the ratings file; they equal the mean and the
  population (``ddof=0``) standard deviation of the raw ratings. The mean in the ground-truth file
  differs from them for 199 of the 1,000 tweets that have 92–99 ratings (by up to 1.13); for every
  other item of every domain the two means agree.
- In ``amazon-reviews`` the two files list the same ids in a slightly different order (``263_3`` comes
  after ``263_25`` in the ground-truth file); rows are matched by id, and the order of the
  ground-truth file is the order of the documents.
- The critics' label is not in the files; it follows from the id (``_critics_label``). The sign of the
  crowd mean agrees with it on 97.0% of the sentences (a zero mean counted as negative).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from importlib.resources import files

import numpy as np
import pandas as pd

from annotator.errors import InputError

ZIP_NAME = "hutto_icwsm2014.zip"

#: Public example name -> the domain prefix of its two files in the zip.
EXAMPLES: dict[str, str] = {
    "rotten-tomatoes": "movieReviewSnippets",
    "tweets": "tweets",
    "nyt-editorials": "nytEditorialSnippets",
    "amazon-reviews": "amazonReviewSnippets",
}

CITATION = (
    "Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment Analysis "
    "of Social Media Text. Eighth International Conference on Weblogs and Social Media (ICWSM-14). "
    "Ann Arbor, MI, June 2014.\n"
    "For the rotten-tomatoes sentences also: Pang, B. & Lee, L. (2005). Seeing stars: Exploiting class "
    "relationships for sentiment categorization with respect to rating scales. Proceedings of the 43rd "
    "Annual Meeting of the Association for Computational Linguistics (ACL 2005), 115–124."
)
LICENSE_NAME = "MIT"

#: Ids of the rotten-tomatoes sentences whose critics' label is positive (fresh); all others are negative.
_FRESH_RANGES = ((1, 5152), (10313, 10347), (10379, 10481), (10604, 10604))


@dataclass
class ExampleData:
    """One example data set.

    ``documents`` has the columns ``id`` (the original id, str), ``text``, ``crowd_mean``, ``crowd_sd``
    and ``n_ratings``. ``ratings[i]`` holds the raw integer ratings (-4..+4, in file order) of row ``i``
    of ``documents``; ``critics[i]`` its critics' label ("positive"/"negative"), for rotten-tomatoes
    only (None for the other examples).
    """

    name: str
    documents: pd.DataFrame
    ratings: list[list[int]]
    critics: list[str] | None = None


def _critics_label(doc_id: str) -> str:
    number = int(doc_id)
    fresh = any(lo <= number <= hi for lo, hi in _FRESH_RANGES)
    return "positive" if fresh else "negative"


def _read_rows(archive: zipfile.ZipFile, member: str, n_fields: int) -> list[list[str]]:
    """Tab-separated lines of ``member``, UTF-8 (a BOM dropped), CRLF stripped, no quoting."""
    text = archive.read(member).decode("utf-8-sig")
    lines = text.split("\n")
    if lines and lines[-1] in ("", "\r"):
        lines.pop()
    rows = [line.removesuffix("\r").split("\t") for line in lines]
    bad = [i for i, row in enumerate(rows) if len(row) != n_fields]
    assert not bad, f"{member}: line {bad[0] + 1} does not have {n_fields} tab-separated fields"
    return rows


def _load_domain(domain: str) -> tuple[pd.DataFrame, list[list[int]]]:
    resource = files("annotator.data.datasets") / ZIP_NAME
    with zipfile.ZipFile(io.BytesIO(resource.read_bytes())) as archive:
        truth = _read_rows(archive, f"{domain}_GroundTruth.txt", 3)
        rated = _read_rows(archive, f"{domain}_anonDataRatings.txt", 4)

    ids = [row[0] for row in truth]
    by_id = {row[0]: row for row in rated}
    assert len(set(ids)) == len(ids), f"{domain}: duplicate ids in the ground-truth file"
    assert len(by_id) == len(rated), f"{domain}: duplicate ids in the ratings file"
    assert by_id.keys() == set(ids), f"{domain}: the ground-truth and ratings files have different ids"

    ratings: list[list[int]] = []
    means: list[float] = []
    sds: list[float] = []
    for doc_id in ids:
        _, mean, sd, raw = by_id[doc_id]
        raw = raw.strip()
        assert raw.startswith("[") and raw.endswith("]"), f"{domain} {doc_id}: ratings are not a list"
        ratings.append(list(map(int, raw[1:-1].split(","))))
        means.append(float(mean))
        sds.append(float(sd))

    documents = pd.DataFrame(
        {
            "id": ids,
            "text": [row[2] for row in truth],
            "crowd_mean": np.array(means, dtype=float),
            "crowd_sd": np.array(sds, dtype=float),
            "n_ratings": np.array([len(r) for r in ratings], dtype=np.int64),
        }
    )
    return documents, ratings


def _sample_positions(n: int, labels: list[str] | None, total: int, seed: int) -> np.ndarray:
    """Sorted row positions of a seeded sample of ``n`` rows, stratified by ``labels`` if given."""
    if seed < 0:
        raise InputError(f"--seed {seed}: use a whole number of 0 or more")
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.choice(total, size=n, replace=False))
    label_array = np.asarray(labels)
    groups = sorted(set(labels))
    members = [np.flatnonzero(label_array == group) for group in groups]
    # Largest-remainder allocation: each stratum gets floor or ceil of its exact share of n.
    exact = np.array([n * len(m) / total for m in members])
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    chosen = [rng.choice(m, size=k, replace=False) for m, k in zip(members, counts, strict=True)]
    return np.sort(np.concatenate(chosen))


def load_example(name: str, n: int | None = None, seed: int = 0) -> ExampleData:
    """Load a bundled example; ``n`` draws a seeded random sample of that many documents.

    For rotten-tomatoes the sample is stratified by the critics' label so that its balance stays that
    of the full set. The sampled documents keep the order of the full set.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key not in EXAMPLES:
        raise InputError(f"unknown example {name!r}; available examples: {', '.join(sorted(EXAMPLES))}")
    documents, ratings = _load_domain(EXAMPLES[key])
    ids = documents["id"].tolist()
    critics = [_critics_label(doc_id) for doc_id in ids] if key == "rotten-tomatoes" else None

    if n is not None:
        total = len(documents)
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= total:
            raise InputError(
                f"n must be a whole number from 1 to {total} for example {key!r} "
                f"({total} documents); got {n!r}"
            )
        positions = _sample_positions(int(n), critics, total, seed)
        documents = documents.iloc[positions].reset_index(drop=True)
        ratings = [ratings[i] for i in positions]
        if critics is not None:
            critics = [critics[i] for i in positions]

    return ExampleData(name=key, documents=documents, ratings=ratings, critics=critics)
