"""The report as one HTML page that opens offline: the summary's markdown
rendered (Python-Markdown, tables included) with every figure it shows or
links to embedded as a data URI, so the page is a single file to open, mail
or attach, with no server and no network (DVC's plots page loads Vega from a
CDN and keeps its images beside it)."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; }
td, th { font-variant-numeric: tabular-nums; }
tr:nth-child(even) { background: #f6f6f6; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
figure { margin: 1em 0; }
"""


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def web_page(title: str, summary_markdown: str, base: Path, explore: str = "") -> str:
    """summary_markdown as a standalone page; images it shows (![..](x.png))
    and PNGs it links to ([..](x.png)) are read from base and embedded.
    explore: the interactive section (pipeline.analysis.interactive), after the
    summary, under its own heading: the page only, since DVC and MLflow show
    the markdown as it is."""
    import markdown

    body = markdown.markdown(summary_markdown, extensions=["tables"])
    body = re.sub(r'<img alt="([^"]*)" src="([^"]+\.png)" />',
                  lambda m: f'<img alt="{m[1]}" src="{data_uri(base / html.unescape(m[2]))}" />', body)
    linked = [html.unescape(name) for name in dict.fromkeys(re.findall(r'<a href="([^"]+\.png)">', body))]
    body = re.sub(r'<a href="([^"]+\.png)">', lambda m: f'<a href="#{m[1]}">', body)
    figures = "".join(f'<figure id="{html.escape(name)}"><figcaption>{html.escape(name)}</figcaption>'
                      f'<img alt="{html.escape(name)}" src="{data_uri(base / name)}" /></figure>' for name in linked)
    if explore:
        explore = f'<h2 id="explore-heading">Explore: step by step, strength by strength</h2>\n{explore}'
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n{body}\n{explore}{figures}\n</body></html>\n")
