"""The documentation: README.md fits a page, and the rest is an MkDocs site in docs/ that builds with
--strict, so no link, image or anchor between its pages rots. The README's own links resolve, and the
test command it gives is the one CI runs."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from markdown.extensions.toc import slugify

README = ROOT / "README.md"
DOCS = ROOT / "docs"
MKDOCS = Path(sys.executable).parent / "mkdocs"  # the environment's own, as CI installs it with .[test]
FENCE = re.compile(r"^ *(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target); text may span lines


def headings(page: Path) -> list[str]:
    """The page's heading anchors as MkDocs makes them (Python-Markdown's toc: lowercase, punctuation
    dropped, spaces to '-'; a repeated heading gets _1, _2, ...), fenced code skipped."""
    anchors, fenced = [], False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else re.match(r"#{1,6} +(.+?) *#*$", line)
        if heading:
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1)).replace("`", "").replace("*", "")
            anchor = slugify(text, "-")
            repeats = anchors.count(anchor) + sum(a.startswith(f"{anchor}_") for a in anchors)
            anchors.append(f"{anchor}_{repeats}" if repeats else anchor)
    return anchors


def quick_start_block(page: Path) -> str:
    """The fenced block of the two commands, fences included."""
    match = re.search(r"^```bash\n# 1\. set up and run the whole pipeline.*?^```$", page.read_text(), re.M | re.S)
    assert match, f"{page.relative_to(ROOT)} has no fenced block starting '# 1. set up and run the whole pipeline'"
    return match.group(0)


def test_the_site_builds_with_every_link_and_anchor_resolved(tmp_path):
    if not MKDOCS.exists():
        pytest.skip(f"mkdocs is not installed beside {sys.executable}: pip install -e '.[docs]'")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    # --strict fails on warnings only: links, anchors and pages left out of the nav must warn
    assert config["validation"]["links"] == {"not_found": "warn", "anchors": "warn", "absolute_links": "warn",
                                             "unrecognized_links": "warn"}, config["validation"]
    assert config["validation"]["nav"]["omitted_files"] == "warn", config["validation"]
    site = tmp_path / "site"
    result = subprocess.run([str(MKDOCS), "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"mkdocs build --strict exited {result.returncode}:\n{result.stderr}"
    assert (site / "index.html").is_file()
    for page in DOCS.glob("*.md"):  # every page is built, none left out
        built = site / "index.html" if page.stem == "index" else site / page.stem / "index.html"
        assert built.is_file(), f"docs/{page.name} was not built"


def test_the_readme_fits_a_page():
    lines = len(README.read_text().splitlines())
    assert lines <= 250, f"README.md has {lines} lines: move the detail into docs/"


def test_the_two_commands_are_the_same_in_the_readme_the_docs_and_ci():
    block = quick_start_block(README)
    assert block in (DOCS / "getting-started.md").read_text(), "docs/getting-started.md's two commands differ"
    commands = block.splitlines()
    tests = commands[commands.index("# 2. set up and run the tests") + 1]
    ci = (ROOT / ".ci/run").read_text().strip().splitlines()[-1]  # after the apt part: the README's, quietly
    assert shlex.split(ci).count("-q") == 1, ci
    assert [word for word in shlex.split(ci) if word != "-q"] == shlex.split(tests), (ci, tests)


def test_the_readme_links_resolve():
    text = README.read_text()
    targets = LINK.findall(text)
    assert any(target.startswith("docs/") for target in targets)
    for target in targets:
        if re.match(r"[a-z]+:", target):  # https://..., mailto:
            continue
        path, _, anchor = target.partition("#")
        if not path:  # an anchor of the README itself
            assert anchor in headings(README), f"README.md links to #{anchor}, which is none of its headings"
            continue
        file = (ROOT / path).resolve()
        assert file.is_relative_to(ROOT) and file.exists(), f"README.md links to {target}: no such file"
        if anchor:
            assert file.suffix == ".md", target
            assert anchor in headings(file), f"README.md links to {target}: {path} has no heading #{anchor}"


def test_the_screenshots_the_ui_tests_write_are_the_ones_the_docs_show():
    """`UPDATE_SCREENSHOTS=1 pytest tests/ui` writes into docs/ui/: the files docs/tracking.md shows."""
    written = set(re.findall(r'screenshots / "([\w.-]+\.png)"', (ROOT / "tests/ui/test_browser.py").read_text()))
    shown = set(re.findall(r"\]\(ui/([\w.-]+\.png)\)", (DOCS / "tracking.md").read_text()))
    assert written and written == shown, (written, shown)
    assert all((DOCS / "ui" / name).is_file() for name in shown)
