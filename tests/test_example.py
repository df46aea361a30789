"""The bundled Rotten Tomatoes data as a project: documents, the critics' gold and crowd pseudo-coders."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import select

from annotator.data.example import import_example
from annotator.project import init_project
from annotator.store.models import Annotation, Coder, Document, Run


def test_example_sample_imports_docs_gold_and_crowd(project) -> None:
    result = import_example(project, n=200, seed=1, raters=5)
    assert result.documents_added == 200
    assert result.coders == ["critics", "crowd-1", "crowd-2", "crowd-3", "crowd-4", "crowd-5"]
    assert result.codes_added == 200 * 6
    with project.transaction() as s:
        kinds = dict(s.execute(select(Coder.name, Coder.kind)).all())
        crowd = s.execute(
            select(Annotation.label, Annotation.raw).join(Run).join(Coder).where(Coder.name == "crowd-1")
        ).all()
        doc = s.execute(select(Document).limit(1)).scalar_one()
    assert kinds["critics"] == "gold" and kinds["crowd-3"] == "human"
    for label, raw in crowd:  # the sign of the rating is the label, 0 is the codebook's "neutral"
        rating = int(raw)
        assert label == ("positive" if rating > 0 else "negative" if rating < 0 else "neutral")
    assert Counter(label for label, _ in crowd)["neutral"] > 0
    assert doc.doc_key.startswith("rt-") and {"crowd_mean", "n_ratings", "critics"} <= set(doc.meta)
    again = import_example(project, n=200, seed=1, raters=5)
    assert (again.documents_added, again.documents_unchanged, again.codes_added) == (0, 200, 0)


def test_example_into_a_bare_project_copies_the_codebook(tmp_path: Path) -> None:
    bare = init_project(tmp_path / "bare")
    assert not (bare.root / "codebooks" / "sentiment.yaml").exists()
    result = import_example(bare, n=50, seed=2, raters=2)
    assert "codebooks/sentiment.yaml" in result.files_copied
    assert (bare.root / "prompts" / "sentiment" / "zero-shot.v1.jinja").is_file()
    bare.engine.dispose()
