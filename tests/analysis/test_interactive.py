"""The report page's sliders: every step and strength has its image and its
histogram, the counts cover every weight, the bins are shared, and nothing
in the section points outside the page."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np

from pipeline.analysis.interactive import BINS, fragment, png, strength_slider, training_slider
from pipeline.analysis.strength_views import StrengthViews
from pipeline.analysis.web_page import web_page

STEPS = [0, 1, 3, 10]
DATA_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")


def image(value: int) -> np.ndarray:
    return np.full((6, 6, 3), value, np.uint8)


def section(images: bool = True) -> tuple[str, dict]:
    rng = np.random.default_rng(0)
    # l2's networks all stopped at step 3, so its training ended there: its last record stands for step 10
    weights = {recipe: {step: rng.normal(scale=1 + step, size=50) for step in steps}
               for recipe, steps in (("baseline", STEPS), ("l2", STEPS[:3]))}
    boundaries = {"baseline": {step: png(image(step)) for step in STEPS},
                  "l2": {step: png(image(100 + step)) for step in STEPS[:3]}} if images else {}
    views = StrengthViews(np.array([0.1, 1.0, 10.0]), rng.normal(size=(3, 70)),
                          np.stack([image(200 + i) for i in range(3)]) if images else None)
    sliders = [training_slider(weights, boundaries), strength_slider("l2", "l2.strength", views, 1.0)]
    html = fragment(sliders)
    data = json.loads(re.search(r'<script type="application/json" id="explore-data">(.*?)</script>', html).group(1))
    return html, data


def decoded(uri: str) -> bytes:
    return base64.b64decode(DATA_URI.fullmatch(uri).group(1))


def test_one_image_and_one_histogram_per_step_and_per_strength():
    html, data = section()
    steps, strengths = data["sliders"]
    assert steps["labels"] == [f"step {step}" for step in STEPS]
    assert strengths["labels"] == ["l2.strength = 0.1", "l2.strength = 1 (chosen on dev)", "l2.strength = 10"]
    baseline, l2 = steps["panels"]
    assert [decoded(data["images"][i]) for i in baseline["images"]] == [png(image(step)) for step in STEPS]
    assert [decoded(data["images"][i]) for i in l2["images"]] == [png(image(100 + step)) for step in (0, 1, 3, 3)]
    (path,) = strengths["panels"]
    assert [decoded(data["images"][i]) for i in path["images"]] == [png(image(200 + i)) for i in range(3)]
    for panel, size, values in ((baseline, 50, 4), (l2, 50, 4), (path, 70, 3)):
        assert len(panel["counts"]) == values
        assert all(len(counts) == BINS and sum(counts) == size for counts in panel["counts"])  # every weight, once
    assert baseline["counts"] != [baseline["counts"][0]] * 4  # the histograms differ between steps
    assert l2["counts"][3] == l2["counts"][2] != l2["counts"][1]
    # shown first: the end of training, and the strength chosen on dev
    assert 'value="3"' in html and "<output>step 10</output>" in html
    assert 'value="1"' in html and "<output>l2.strength = 1 (chosen on dev)</output>" in html
    assert "Chosen on dev: l2.strength = 1." in html


def test_nothing_outside_the_page_and_same_bytes_each_time():
    html, _ = section()
    assert html == section()[0]
    rest = DATA_URI.sub("", html)
    assert "http" not in rest and "//" not in rest and "src=\"data:" in html
    page = web_page("moons", "# moons\n", Path("."), html)
    assert page.index("Explore") < page.index('<section id="explore">') < page.index("</body>")


def test_without_boundaries_only_the_histograms():
    html, data = section(images=False)
    assert "<img" not in html and html.count("<canvas") == 3
    assert all(panel["images"] is None for slider in data["sliders"] for panel in slider["panels"])
    assert fragment([]) == ""
