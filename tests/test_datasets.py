"""The bundled Hutto & Gilbert (2014) examples: counts, alignment, labels, sampling, errors."""

from __future__ import annotations

import zipfile
from importlib.resources import files

import numpy as np
import pytest

from annotator.data.datasets import CITATION, EXAMPLES, ExampleData, load_example
from annotator.data.datasets.hutto import LICENSE_NAME, ZIP_NAME
from annotator.errors import InputError

N_MOVIES = 10_605
N_POSITIVE = 5_291
N_NEGATIVE = 5_314
COLUMNS = ["id", "text", "crowd_mean", "crowd_sd", "n_ratings"]


@pytest.fixture(scope="module")
def movies() -> ExampleData:
    return load_example("rotten-tomatoes")


def _check_consistent(data: ExampleData) -> None:
    docs = data.documents
    assert list(docs.columns) == COLUMNS
    assert len(data.ratings) == len(docs)
    assert docs["id"].is_unique
    assert all(isinstance(v, str) for v in docs["id"])
    assert all(isinstance(v, str) and v and "\r" not in v and "\n" not in v for v in docs["text"])
    assert docs["n_ratings"].tolist() == [len(r) for r in data.ratings]
    flat = np.concatenate([np.asarray(r) for r in data.ratings])
    assert flat.min() >= -4 and flat.max() <= 4
    assert all(isinstance(v, int) for r in data.ratings[:50] for v in r)
    means = np.array([np.mean(r) for r in data.ratings])
    np.testing.assert_allclose(docs["crowd_mean"].to_numpy(), means, rtol=0, atol=1e-6)
    sds = np.array([np.std(r) for r in data.ratings])  # population SD, rounded to 5 decimals in the file
    np.testing.assert_allclose(docs["crowd_sd"].to_numpy(), sds, rtol=0, atol=1e-4)


def test_names_and_metadata():
    assert EXAMPLES == {
        "rotten-tomatoes": "movieReviewSnippets",
        "tweets": "tweets",
        "nyt-editorials": "nytEditorialSnippets",
        "amazon-reviews": "amazonReviewSnippets",
    }
    assert "Hutto" in CITATION and "Gilbert" in CITATION and "ICWSM" in CITATION
    assert "Pang" in CITATION and "Lee" in CITATION and "2005" in CITATION
    assert LICENSE_NAME == "MIT"


def test_bundled_zip_is_complete_and_reproducible():
    resource = files("annotator.data.datasets") / ZIP_NAME
    with resource.open("rb") as handle, zipfile.ZipFile(handle) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        expected = {"LICENSE.txt", "README.md", "_README_.txt"}
        for domain in EXAMPLES.values():
            expected |= {f"{domain}_GroundTruth.txt", f"{domain}_anonDataRatings.txt"}
        assert names == sorted(expected)
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in infos)
        assert all(info.compress_type == zipfile.ZIP_LZMA for info in infos)
        assert "MIT License" in archive.read("LICENSE.txt").decode()


def test_rotten_tomatoes_full(movies):
    assert movies.name == "rotten-tomatoes"
    assert len(movies.documents) == N_MOVIES
    _check_consistent(movies)
    assert movies.documents["id"].tolist() == [str(i) for i in range(1, N_MOVIES + 1)]
    assert movies.documents["n_ratings"].between(15, 29).all()
    assert movies.documents["n_ratings"].median() == 18
    assert movies.critics is not None and len(movies.critics) == N_MOVIES
    assert movies.critics.count("positive") == N_POSITIVE
    assert movies.critics.count("negative") == N_NEGATIVE
    assert movies.documents["text"][0].startswith("The Rock is destined to be the 21st Century's new")


def test_critics_rule_at_the_range_edges(movies):
    label = dict(zip(movies.documents["id"], movies.critics, strict=True))
    positive = ["1", "5152", "10313", "10347", "10379", "10481", "10604"]
    negative = ["5153", "10312", "10348", "10378", "10482", "10603", "10605"]
    assert [label[i] for i in positive] == ["positive"] * len(positive)
    assert [label[i] for i in negative] == ["negative"] * len(negative)


def test_crowd_mean_sign_agrees_with_critics(movies):
    positive = np.array(movies.critics) == "positive"
    agree = (movies.documents["crowd_mean"].to_numpy() > 0) == positive
    assert round(agree.mean(), 3) == 0.970  # README: 97.0%


def test_rotten_tomatoes_sample(movies):
    first = load_example("rotten-tomatoes", n=200, seed=1)
    again = load_example("rotten-tomatoes", n=200, seed=1)
    other = load_example("rotten-tomatoes", n=200, seed=2)
    assert first.critics is not None and other.critics is not None
    assert len(first.documents) == 200 and len(first.ratings) == 200 and len(first.critics) == 200
    assert first.documents.equals(again.documents)
    assert first.ratings == again.ratings and first.critics == again.critics
    assert first.documents["id"].tolist() != other.documents["id"].tolist()

    expected = 200 * N_POSITIVE / N_MOVIES
    for sample in (first, other):
        assert sample.critics is not None
        assert abs(sample.critics.count("positive") - expected) <= 1
        numbers = sample.documents["id"].astype(int)
        assert numbers.is_monotonic_increasing and numbers.is_unique
        _check_consistent(sample)

    # The sample's rows, ratings and labels are those of the same ids in the full set.
    full = movies.documents.set_index("id")
    ratings = dict(zip(movies.documents["id"], movies.ratings, strict=True))
    critics = dict(zip(movies.documents["id"], movies.critics, strict=True))
    for i, row in first.documents.iterrows():
        assert row["text"] == full.loc[row["id"], "text"]
        assert first.ratings[i] == ratings[row["id"]]
        assert first.critics[i] == critics[row["id"]]


def test_sample_of_everything_is_the_full_set(movies):
    everything = load_example("rotten-tomatoes", n=N_MOVIES, seed=5)
    assert everything.documents.equals(movies.documents)
    assert everything.ratings == movies.ratings and everything.critics == movies.critics


@pytest.mark.parametrize(
    ("name", "count"), [("tweets", 4_200), ("nyt-editorials", 5_190), ("amazon-reviews", 3_708)]
)
def test_other_domains(name, count):
    data = load_example(name)
    assert data.name == name
    assert data.critics is None
    assert len(data.documents) == count
    _check_consistent(data)
    assert data.documents["n_ratings"].min() >= 20

    sample = load_example(name, n=50, seed=3)
    assert sample.critics is None
    assert len(sample.documents) == 50
    assert sample.documents.equals(load_example(name, n=50, seed=3).documents)
    position = {doc_id: i for i, doc_id in enumerate(data.documents["id"])}
    assert np.all(np.diff([position[i] for i in sample.documents["id"]]) > 0)
    _check_consistent(sample)


def test_amazon_rows_are_matched_by_id():
    # The two amazon files list 263_3 at different places; the documents keep the ground-truth order.
    data = load_example("amazon-reviews")
    ids = data.documents["id"].tolist()
    assert ids.index("263_3") == ids.index("263_25") + 1
    row = data.documents.iloc[ids.index("263_3")]
    assert row["text"] == "it is an extremely cool gizmo."
    assert row["crowd_mean"] == pytest.approx(2.95)


def test_tweets_have_up_to_99_ratings():
    counts = load_example("tweets").documents["n_ratings"]
    assert counts.max() == 99
    assert (counts > 20).sum() == 1_000


def test_names_are_forgiving_about_case_and_underscores():
    assert load_example("Amazon_Reviews", n=3).name == "amazon-reviews"


def test_unknown_name():
    with pytest.raises(InputError) as caught:
        load_example("imdb")
    message = str(caught.value)
    assert "'imdb'" in message
    for name in EXAMPLES:
        assert name in message


@pytest.mark.parametrize("n", [0, -5, N_MOVIES + 1, 2.5, True, "10"])
def test_bad_n(n):
    with pytest.raises(InputError) as caught:
        load_example("rotten-tomatoes", n=n)
    assert f"1 to {N_MOVIES}" in str(caught.value)


def test_bad_n_names_the_range_of_the_example():
    with pytest.raises(InputError, match="1 to 4200"):
        load_example("tweets", n=4_201)
