"""Codebooks: the shipped examples load, broken files point at the right line and field, labels normalise."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotator.codebook import (
    Codebook,
    check_codebook,
    codebook_diff,
    load_codebook,
    parse_codebook,
    to_yaml,
)
from annotator.errors import CodebookError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "codebooks"
BROKEN = Path(__file__).resolve().parent / "data" / "codebooks"

MINIMAL = """\
name: demo
version: 1
description: A small codebook.
labels:
  - name: negative
    definition: Unfavourable.
  - name: positive
    definition: Favourable.
"""


def problems_of(name: str) -> list[tuple[int | None, str, str]]:
    return [(p.line, p.field, p.message) for p in check_codebook(BROKEN / name)]


# --- shipped codebooks -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sentiment", "stance"])
def test_shipped_codebook_is_clean_and_round_trips(name: str) -> None:
    path = SHIPPED / f"{name}.yaml"
    assert check_codebook(path) == []
    codebook = load_codebook(path)
    assert codebook.name == name
    assert codebook.version == 1
    assert codebook.kind == "nominal"
    assert parse_codebook(to_yaml(codebook)) == codebook
    assert parse_codebook(to_yaml(codebook)).sha256 == codebook.sha256
    for label in codebook.labels:
        assert label.include and label.exclude
        assert 2 <= len(label.examples.positive) <= 3
        assert 2 <= len(label.examples.negative) <= 3


def test_sentiment_codebook_labels() -> None:
    codebook = load_codebook(SHIPPED / "sentiment.yaml")
    assert codebook.label_names == ["negative", "positive"]
    assert codebook.uncertain is not None and codebook.uncertain.name == "neutral"
    assert codebook.allowed_labels == ["negative", "positive", "neutral"]
    assert "prefer" in codebook.description or "leans" in codebook.description


def test_stance_codebook_labels() -> None:
    codebook = load_codebook(SHIPPED / "stance.yaml")
    assert codebook.label_names == ["favor", "against", "neutral"]
    assert codebook.allowed_labels[-1] == "uncertain"
    assert "voting age" in codebook.description


# --- hashing and YAML output -------------------------------------------------------------------------


def test_sha256_ignores_comments_and_layout_but_not_content() -> None:
    base = parse_codebook(MINIMAL)
    reformatted = parse_codebook(
        "# a comment\n"
        + MINIMAL.replace("version: 1", "version:    1   # first")
        + "\n\n# trailing comment\n"
    )
    assert reformatted.sha256 == base.sha256
    flow_style = parse_codebook(
        "{name: demo, version: 1, description: A small codebook., labels: "
        "[{name: negative, definition: Unfavourable.}, {name: positive, definition: Favourable.}]}"
    )
    assert flow_style.sha256 == base.sha256
    changed = parse_codebook(MINIMAL.replace("definition: Favourable.", "definition: Approving."))
    assert changed.sha256 != base.sha256


def test_to_yaml_round_trips_every_field() -> None:
    text = """\
name: scale
version: 3
description: An ordinal scale.
instructions: |
  First line.
  Second line.
kind: ordinal
labels:
  - name: low
    definition: Little.
    value: 0.5
    examples:
      negative: [A lot.]
  - name: middle
    definition: Some.
    include: ['Some: but not much', "#hashtags"]
    value: 1
  - name: high
    definition: 'Yes: a lot.'
    exclude: ["true", "42"]
    value: 2.25
uncertain:
  definition: Cannot tell.
"""
    codebook = parse_codebook(text)
    out = to_yaml(codebook)
    assert parse_codebook(out) == codebook
    assert out.index("name: scale") < out.index("version: 3") < out.index("labels:")
    assert "instructions: |" in out
    assert "include: []" not in out and "value: null" not in out
    assert "name: uncertain" in out  # the default name is written out


def test_to_yaml_omits_defaults() -> None:
    out = to_yaml(parse_codebook(MINIMAL))
    assert "uncertain" not in out and "instructions" not in out and "examples" not in out
    assert out.startswith("name: demo\nversion: 1\n")


def test_codebook_diff_shows_the_changed_line() -> None:
    a = parse_codebook(MINIMAL)
    b = parse_codebook(MINIMAL.replace("definition: Favourable.", "definition: Approving."))
    diff = codebook_diff(a, b, "demo@1", "demo@2")
    assert "--- demo@1" in diff and "+++ demo@2" in diff
    assert "-    definition: Favourable.\n" in diff
    assert "+    definition: Approving.\n" in diff
    assert "Unfavourable" not in [line[1:].strip() for line in diff.splitlines() if line[:1] in "+-"]
    assert codebook_diff(a, parse_codebook(MINIMAL)) == ""


# --- broken files: every problem names its line and field --------------------------------------------


def test_missing_definition() -> None:
    assert problems_of("missing_definition.yaml") == [
        (7, "labels[1].definition", "missing: every label needs a definition")
    ]
    with pytest.raises(CodebookError) as info:
        load_codebook(BROKEN / "missing_definition.yaml")
    assert str(info.value).endswith(
        "missing_definition.yaml:7: labels[1].definition: missing: every label needs a definition"
    )
    assert "more problem" not in str(info.value)


def test_misspelled_field() -> None:
    problems = problems_of("misspelled_field.yaml")
    assert (
        8,
        "labels[1].defintion",
        "unknown field 'defintion' (allowed: name, definition, include, exclude, examples, value); "
        "did you mean 'definition'?",
    ) in problems
    assert (7, "labels[1].definition", "missing: every label needs a definition") in problems
    assert len(problems) == 2


def test_bad_kind_lists_the_allowed_kinds() -> None:
    [(line, field, message)] = problems_of("bad_kind.yaml")
    assert (line, field) == (4, "kind")
    assert "'nomnal'" in message
    assert "nominal, ordinal, multilabel" in message


def test_yaml_syntax_error_has_the_line() -> None:
    [(line, field, message)] = problems_of("yaml_syntax.yaml")
    assert line == 8 and field == ""
    assert message.startswith("invalid YAML")
    assert "indentation" in message


def test_duplicate_label_ignores_case() -> None:
    [(line, field, message)] = problems_of("duplicate_label.yaml")
    assert (line, field) == (9, "labels[2].name")
    assert "duplicate label 'Positive'" in message and "labels[0]" in message
    with pytest.raises(CodebookError, match="duplicate label"):
        load_codebook(BROKEN / "duplicate_label.yaml")


def test_list_instead_of_mapping() -> None:
    [(line, field, message)] = problems_of("list_not_mapping.yaml")
    assert (line, field) == (2, "")
    assert "mapping" in message and "not a list" in message


def test_ordinal_values_must_increase() -> None:
    [(line, field, message)] = problems_of("ordinal_values.yaml")
    assert (line, field) == (14, "labels[2].value")
    assert "increase" in message and "2" in message and "3" in message


def test_three_problems_are_all_reported() -> None:
    problems = check_codebook(BROKEN / "three_problems.yaml")
    assert [(p.line, p.field) for p in problems] == [
        (2, "version"),
        (7, "labels[0].exampels"),
        (10, "labels[1].definition"),
    ]
    assert "whole number" in problems[0].message and "'one'" in problems[0].message
    with pytest.raises(CodebookError) as info:
        load_codebook(BROKEN / "three_problems.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(problems[0]))
    assert "and 2 more problems" in message
    assert f"annotator codebook check {BROKEN / 'three_problems.yaml'}" in message
    assert info.value.problems == problems


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINIMAL.replace("Favourable.", "Favorable, très.").encode("latin-1"))
    [problem] = check_codebook(path)
    assert problem.line == 8
    assert "UTF-8" in problem.message and "0xe8" in problem.message
    with pytest.raises(CodebookError) as info:
        load_codebook(path)
    assert str(path) in str(info.value)
    assert f"offset {MINIMAL.index('Favourable.') + len('Favorable, tr')}" in str(info.value)
    assert "save the file as UTF-8" in str(info.value)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.replace("A small", "Ein kleines, schönes").encode())
    assert load_codebook(path).description == "Ein kleines, schönes codebook."


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(CodebookError) as info:
        load_codebook(path)
    assert str(info.value) == (
        f"codebook file not found: {path} — create it or check the path "
        "(`annotator codebook list` shows the project's codebooks)"
    )
    [problem] = check_codebook(path)
    assert problem.line is None and "not found" in problem.message


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(CodebookError, match="cannot read"):
        load_codebook(tmp_path)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_file(text: str) -> None:
    with pytest.raises(CodebookError, match="empty"):
        parse_codebook(text, "empty.yaml")


# --- schema messages (inline texts) ------------------------------------------------------------------


def first_problem(text: str) -> tuple[int | None, str, str]:
    with pytest.raises(CodebookError) as info:
        parse_codebook(text, "x.yaml")
    problem = info.value.problems[0]
    return problem.line, problem.field, problem.message


def test_missing_top_level_field_points_at_the_mapping() -> None:
    line, field, message = first_problem(
        "# header\n" + MINIMAL.replace("description: A small codebook.\n", "")
    )
    assert (line, field) == (2, "description")
    assert message.startswith("missing: the codebook needs a description")


def test_bad_codebook_name() -> None:
    assert first_problem(MINIMAL.replace("name: demo", "name: My Codebook"))[:2] == (1, "name")
    assert "lowercase" in first_problem(MINIMAL.replace("name: demo", "name: My Codebook"))[2]


def test_label_name_that_is_a_number_asks_for_quotes() -> None:
    line, field, message = first_problem(MINIMAL.replace("name: positive", "name: 5"))
    assert (line, field) == (7, "labels[1].name")
    assert "text" in message and "quotes" in message


def test_too_few_labels() -> None:
    text = MINIMAL.split("  - name: positive")[0]
    line, field, message = first_problem(text)
    assert (line, field) == (4, "labels")
    assert "at least 2 labels" in message


def test_unknown_top_level_field() -> None:
    line, field, message = first_problem(MINIMAL + "lables: []\n")
    assert (line, field) == (9, "lables")
    assert "did you mean 'labels'?" in message


def test_duplicate_yaml_key() -> None:
    line, field, message = first_problem(MINIMAL.replace("version: 1\n", "version: 1\nversion: 2\n"))
    assert (line, field) == (3, "version")
    assert "duplicate key" in message and "line 2" in message


# --- lint rules --------------------------------------------------------------------------------------


def test_uncertain_label_must_not_clash_with_a_label() -> None:
    line, field, message = first_problem(
        MINIMAL + "uncertain:\n  name: Positive\n  definition: Cannot tell.\n"
    )
    assert (line, field) == (10, "uncertain.name")
    assert "labels[1]" in message


def test_ordinal_values_all_or_none() -> None:
    text = MINIMAL.replace("kind", "").replace("labels:", "kind: ordinal\nlabels:")
    text = text.replace("definition: Favourable.", "definition: Favourable.\n    value: 2")
    line, field, message = first_problem(text)
    assert (line, field) == (6, "labels[0].value")
    assert "every label a value or none" in message
    ok = text.replace("definition: Unfavourable.", "definition: Unfavourable.\n    value: -1")
    assert [label.value for label in parse_codebook(ok).labels] == [-1.0, 2.0]


def test_value_only_on_ordinal() -> None:
    text = MINIMAL.replace("definition: Favourable.", "definition: Favourable.\n    value: 1")
    line, field, message = first_problem(text)
    assert (line, field) == (9, "labels[1].value")
    assert "ordinal" in message


def test_empty_list_entry() -> None:
    text = MINIMAL.replace(
        "definition: Favourable.", "definition: Favourable.\n    include:\n      - ok\n      - ''"
    )
    assert first_problem(text)[:2] == (11, "labels[1].include[1]")


# --- label normalisation -----------------------------------------------------------------------------


@pytest.fixture
def sentiment() -> Codebook:
    return load_codebook(SHIPPED / "sentiment.yaml")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("positive", "positive"),
        ("  Positive \n", "positive"),
        ("NEGATIVE", "negative"),
        ("Neutral", "neutral"),  # the uncertain label
        ("pos", None),
        ("", None),
        ("   ", None),
        (None, None),
        (float("nan"), None),
        ("positive;negative", None),  # not a multi-label codebook
    ],
)
def test_normalize_label(sentiment: Codebook, raw: object, expected: str | None) -> None:
    assert sentiment.normalize_label(raw) == expected


def test_normalize_numeric_labels() -> None:
    scale = parse_codebook(
        MINIMAL.replace("name: negative", "name: '1'").replace("name: positive", "name: '2'")
    )
    assert scale.normalize_label(2) == "2"
    assert scale.normalize_label(1.0) == "1"
    assert scale.normalize_label(3) is None


def test_normalize_multilabel() -> None:
    text = MINIMAL.replace("labels:", "kind: multilabel\nlabels:") + (
        "  - name: Mixed\n    definition: Both.\nuncertain:\n  definition: Cannot tell.\n"
    )
    codebook = parse_codebook(text)
    assert codebook.normalize_label("positive") == "positive"
    assert codebook.normalize_label("mixed ; NEGATIVE") == "negative;Mixed"
    assert codebook.normalize_label("positive;negative;positive") == "negative;positive"
    assert codebook.normalize_label("positive;") == "positive"
    assert codebook.normalize_label("positive;bogus") is None
    assert codebook.normalize_label(" ; ") is None
    assert codebook.normalize_label(None) is None
