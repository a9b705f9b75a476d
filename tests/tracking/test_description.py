"""The pipeline run's description: MLflow keeps 8 000 characters of a tag and
cuts the rest mid-word, so a long report is cut at a section, with a link to
the whole page."""

from __future__ import annotations

from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

from pipeline.usecases.recording import description

HEAD = "**[Open the comparison](#/x)**\n\n"


def page(sections: int, length: int) -> str:
    return "# title\n\nintro" + "".join(f"\n## section {i}\n\n" + "x" * length for i in range(sections))


def test_a_report_that_fits_is_whole():
    text = page(3, 100)
    assert description(HEAD, text, "run") == HEAD + text


def test_a_long_report_keeps_whole_sections_and_links_to_the_rest():
    text = page(10, 1500)
    written = description(HEAD, text, "abc")
    assert len(text) > MAX_TAG_VAL_LENGTH >= len(written)
    kept = written.removeprefix(HEAD).split("\n\n*The rest of the report")[0]
    assert text.startswith(kept) and kept.endswith("x" * 1500)  # a section boundary, nothing cut mid-way
    assert "## section 4\n" in kept and "## section 5\n" not in kept  # five of 1 517 characters fit, six do not
    assert written.endswith("*The rest of the report: [summary.md](get-artifact?path=summary.md&run_uuid=abc), "
                            "and its figures under Artifacts.*")
