"""The report page's interactive section: sliders over the training step and
over each path's strength that switch a decision boundary and a weight
histogram together, as the articles' figures do. Plain HTML with inline
script and style: the images are data URIs, the histograms bin counts
(numpy, shared bins per slider) drawn on a canvas by a few lines of script,
so the page still opens from disk with no network. Same inputs, same bytes."""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pipeline.analysis.strength_views import StrengthViews

BINS = 41  # odd: the middle bin is centred on zero, where L1 piles its weights
CANVAS = (240, 80)  # histogram pixels, width and height

STYLE = """
.explore-slider { margin: 1.5em 0; }
.explore-slider label { display: flex; gap: 1em; align-items: center; }
.explore-slider input { width: 240px; }
.explore-slider.single { display: inline-block; vertical-align: top; width: 260px; margin-right: 2em; }
.explore-slider.single label { display: block; }
.explore-slider output { font-variant-numeric: tabular-nums; min-width: 16em; }
.explore-panels { display: flex; flex-wrap: wrap; gap: 12px; }
.explore-panel { margin: 0; width: 240px; }
.explore-panel img { width: 240px; height: 240px; image-rendering: pixelated; margin: 0; }
.explore-panel canvas { display: block; border-bottom: 1px solid #999; }
.explore-panel figcaption { font-size: 13px; }
"""

SCRIPT = """
(function () {
  const data = JSON.parse(document.getElementById("explore-data").textContent);
  function draw(canvas, counts, top) {
    const context = canvas.getContext("2d"), width = canvas.width, height = canvas.height;
    const bar = width / counts.length;
    context.clearRect(0, 0, width, height);
    context.fillStyle = "#bbb";
    context.fillRect(Math.floor(width / 2), 0, 1, height);
    context.fillStyle = "#3b6ea8";
    counts.forEach(function (count, i) {
      const tall = height * Math.log1p(count) / Math.log1p(top);
      context.fillRect(i * bar, height - tall, Math.max(bar - 1, 1), tall);
    });
  }
  document.querySelectorAll(".explore-slider").forEach(function (box) {
    const slider = data.sliders[Number(box.dataset.slider)];
    const input = box.querySelector("input"), shown = box.querySelector("output");
    const panels = box.querySelectorAll(".explore-panel");
    function show() {
      const at = Number(input.value);
      shown.textContent = slider.labels[at];
      panels.forEach(function (panel, p) {
        const view = slider.panels[p], image = panel.querySelector("img");
        if (image) image.src = data.images[view.images[at]];
        draw(panel.querySelector("canvas"), view.counts[at], view.top);
      });
    }
    input.addEventListener("input", show);
    show();
  });
})();
"""


@dataclass
class Panel:
    title: str
    weights: list[np.ndarray]  # per slider value: the network's weights, flattened
    images: list[bytes] | None = None  # per slider value: its decision boundary, a PNG file's bytes


@dataclass
class Slider:
    heading: str
    labels: list[str]  # per value, the text shown beside the slider ("step 30", "l2.strength = 0.1")
    panels: list[Panel]
    start: int  # the value shown first
    note: str = ""


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def training_slider(weights: dict[str, dict[int, np.ndarray]], images: dict[str, dict[int, bytes]]) -> Slider:
    """weights: per recipe, step -> its first seed's weights flattened; images:
    per recipe, step -> its boundary then (none for images as data). Where a
    recipe has no record at a step (its networks all stopped early, so its
    training ended), it shows its last: the network as it stopped."""
    steps = sorted({step for by_step in weights.values() for step in by_step})
    panels = [Panel(recipe, [latest(by_step, step) for step in steps],
                    [latest(images[recipe], step) for step in steps] if images.get(recipe) else None)
              for recipe, by_step in weights.items()]
    shown = "The boundary and the histogram" if any(panel.images for panel in panels) else "The histogram"
    return Slider("Over training, each recipe's first seed", [f"step {step}" for step in steps], panels,
                  len(steps) - 1, f"{shown} of every weight (biases aside) at the same step.")


def latest(by_step: dict, step: int):
    """The record at step, or the last one before it."""
    return by_step[max(s for s in by_step if s <= step)]


def strength_slider(name: str, swept: str, views: StrengthViews, selected: float | None) -> Slider:
    """One path: per strength, its first seed's network; starts at the strength chosen on dev."""
    strengths = views.strengths.tolist()
    labels = [f"{swept} = {value:g}" + (" (chosen on dev)" if value == selected else "") for value in strengths]
    images = None if views.images is None else [png(image) for image in views.images]
    note = f"Chosen on dev: {swept} = {selected:g}." if selected is not None else "No dev set: nothing chosen."
    return Slider(f"The {name} path, first seed", labels,
                  [Panel(name, list(views.weights), images)], strengths.index(selected) if selected in strengths else 0,
                  note)


def histogram_bins(slider: Slider) -> np.ndarray:
    """Edges shared by all the slider's panels and values: one symmetric range, zero in the middle bin."""
    reach = max(float(np.abs(w).max(initial=0.0)) for panel in slider.panels for w in panel.weights) or 1.0
    return np.linspace(-reach, reach, BINS + 1)


def fragment(sliders: list[Slider]) -> str:
    """The section's HTML: a range input per slider, its value as text, and per panel an image and a canvas."""
    if not sliders:
        return ""
    uris: dict[bytes, int] = {}  # each distinct image once: stopped networks and repeats point to the same
    described, sections = [], []
    for index, slider in enumerate(sliders):
        edges, panels, figures = histogram_bins(slider), [], []
        for panel in slider.panels:
            counts = [np.histogram(w, edges)[0].tolist() for w in panel.weights]
            images = [uris.setdefault(image, len(uris)) for image in panel.images] if panel.images else None
            panels.append({"counts": counts, "top": max(max(c) for c in counts) or 1, "images": images})
            image = (f'<img alt="{html.escape(panel.title)}: decision boundary" '
                     f'src="{png_uri(panel.images[slider.start])}">' if panel.images else "")
            figures.append(f'<figure class="explore-panel"><figcaption>{html.escape(panel.title)}</figcaption>{image}'
                           f'<canvas width="{CANVAS[0]}" height="{CANVAS[1]}"></canvas></figure>')
        described.append({"labels": slider.labels, "panels": panels})
        kind = "explore-slider single" if len(slider.panels) == 1 else "explore-slider"  # a path's: side by side
        sections.append(
            f'<div class="{kind}" data-slider="{index}">'
            f'<h3>{html.escape(slider.heading)}</h3>'
            f'<label><input type="range" min="0" max="{len(slider.labels) - 1}" step="1" value="{slider.start}" '
            f'aria-label="{html.escape(slider.heading)}"><output>{html.escape(slider.labels[slider.start])}</output>'
            f'</label><p>{html.escape(slider.note)} Weights from {edges[0]:.3g} to {edges[-1]:.3g}, '
            f'{BINS} bins, counts on a log scale.</p><div class="explore-panels">{"".join(figures)}</div></div>')
    data = json.dumps({"images": [png_uri(image) for image in uris], "sliders": described}, separators=(",", ":"))
    data = data.replace("</", "<\\/")  # no "</script>" inside the script element
    return (f'<section id="explore"><style>{STYLE}</style>\n' + "\n".join(sections)
            + f'\n<script type="application/json" id="explore-data">{data}</script>\n<script>{SCRIPT}</script>'
            "</section>\n")


def png_uri(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode("ascii")
