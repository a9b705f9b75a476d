"""The report's HTML page opens offline: every figure it shows or links is inside it."""

from __future__ import annotations

import base64
import re

import matplotlib.pyplot as plt

from pipeline.analysis.web_page import web_page


def png(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.set_facecolor(colour)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path.read_bytes()


def test_page_embeds_shown_and_linked_figures_and_renders_the_table(tmp_path):
    shown, linked = png(tmp_path / "figures/boundaries.png", "red"), png(tmp_path / "paths/l2.png", "blue")
    summary = ("# moons\n\n| recipe | test acc |\n|---|---:|\n| l2 | 90.7% [90.6, 90.7] |\n\n"
               "path figure: [paths/l2.png](paths/l2.png)\n\n![boundaries](figures/boundaries.png)\n")
    page = web_page("moons report", summary, tmp_path)
    assert page.startswith("<!DOCTYPE html>") and "<title>moons report</title>" in page
    assert re.search(r'<td style="text-align: right;">90.7% \[90.6, 90.7\]</td>', page)
    embedded = [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]
    assert embedded == [shown, linked]  # the shown figure in place, the linked one appended
    assert '<a href="#paths/l2.png">' in page and '<figure id="paths/l2.png">' in page
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # nothing outside the file
