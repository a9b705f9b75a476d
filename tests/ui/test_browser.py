"""What a user sees in a browser, in a real headless Chromium, after a real,
small `dvc repro` (moons; the whole suite of recipes, seeds 0 and 1, one
path): MLflow's UI over the store it filled, as "Comparing in the MLflow UI"
(docs/tracking.md) promises, starting from the link `dvc repro` prints, with
every click counted; and the page `dvc plots show` writes, with no network.

The selectors follow MLflow's UI of the installed version (see the hooks
below); an MLflow upgrade that moves them fails here first, not in a user's
hands. `UPDATE_SCREENSHOTS=1 pytest tests/ui` rewrites the screenshots that
docs/tracking.md shows, in docs/ui/; otherwise they go to a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, urljoin

import numpy as np
import pytest
from conftest import ROOT, in_project, make_project, mlflow_client, mlflow_server, run
from playwright.sync_api import Page, expect, sync_playwright

from pipeline.analysis.weights_over_training import FIGURES
from pipeline.config import load_params
from pipeline.tracking.store import LOCAL_UI, NOTE
from pipeline.tracking.views import BOUNDARY, LANDSCAPE, VIEW_TAG

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: Playwright's own browser download is not allowed here
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"no {CHROMIUM}: install Debian's chromium (apt-get install chromium)")

IMAGE_KEY = "decision_boundary"  # a recipe run's own boundary: MlflowClient.log_image(run_id, image, key=IMAGE_KEY)
VIEWPORT = {"width": 1280, "height": 800}
UI_TIMEOUT_MS = 20_000  # Playwright's 5 s default is short for MLflow's 22 MB of JavaScript on 2 busy cores
PRINTED_LINK = re.compile(r"track moons: the comparison in MLflow: (\S+)")
# MLflow's UI asks for the signed-in user; a server without authentication answers 404. Nothing else may fail.
KNOWN_FAILURE = "/ajax-api/2.0/mlflow/users/current"
# Chromium's report that a layout took two frames (MLflow's charts resizing on a busy machine): no fault.
BENIGN_CONSOLE = "ResizeObserver loop completed with undelivered notifications"

# MLflow 3.17's UI: the hooks this test (and the docs' walk, docs/tracking.md) relies on.
CHART_SEARCH = "Search metric charts"  # placeholder of the chart view's (and run page's) chart filter
CARD = '[data-testid="experiment-view-compare-runs-card"]'
TABLE_VIEW = 'label:has(input[name="runs-view-mode"][value="TABLE"])'  # the runs page's Table | Chart switch
RUN_ROW = '[role="row"]'


def image_of(key: str) -> str:
    """An image card's <img>: it loads get-artifact?path=images/<key>+step+...&run_uuid=<run>,
    a key's "/" written "~" (MLflow's file name for it)."""
    path = quote(f"images/{key.replace('/', '~')}+", safe="")
    return f'img[src*="{path}"]'


@pytest.fixture(scope="module")
def built_project(tmp_path_factory) -> Path:
    """The small project with every recipe of the suite, after one cold `dvc repro`:
    more recipes than MLflow's charts show runs by default (10)."""
    path = make_project(tmp_path_factory.mktemp("built") / "project", whole_suite=True)
    result = run(["dvc", "repro"], path)
    (path / "repro.log").write_text(result.stdout + result.stderr)
    return path


@pytest.fixture(scope="module")
def mlflow_ui(built_project: Path, tmp_path_factory) -> Iterator[str]:
    """`mlflow server` over the pipeline's SQLite store, as docs/tracking.md
    starts it; it serves the runs' artifacts from their experiment's file:// location."""
    log = tmp_path_factory.mktemp("mlflow-server") / "server.log"
    with mlflow_server(f"sqlite:///{built_project / 'mlflow.db'}", log, built_project) as (url, ready, _):
        ready()
        yield url


@pytest.fixture(scope="module")
def printed_link(built_project: Path, mlflow_ui: str) -> str:
    """The link `dvc repro` printed for moons, on the test's server instead of `mlflow ui`'s default address."""
    match = PRINTED_LINK.search((built_project / "repro.log").read_text())
    assert match, f"dvc repro printed no link to the comparison:\n{(built_project / 'repro.log').read_text()}"
    assert match.group(1).startswith(f"{LOCAL_UI}/#/experiments/")
    return mlflow_ui + match.group(1).removeprefix(LOCAL_UI)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        expect.set_options(timeout=UI_TIMEOUT_MS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser) -> Iterator[Page]:
    """A fresh profile per test (no state left by another test), as of a user
    who has closed MLflow's assistant panel: on a first visit it opens over a
    third of the page. The keys are the UI's own; if they change, the panel
    only shows in the screenshots."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script("""for (const [key, value] of [["mlflow.assistant.fab.autoOpenedOnFirstLoad_v1", "true"],
                                                       ["mlflow.assistant.panelOpen_v1", "false"]]) {
        if (localStorage.getItem(key) === null) localStorage.setItem(key, value);
    }""")
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        folder = ROOT / "docs/ui"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def store(built_project: Path) -> dict:
    """What the UI should show, read with MLflow's client: the experiment, its
    pipeline run, and per recipe (in the suite's order, baseline first) its
    run's id, test accuracy over seeds (mean, 95% interval) and verdict."""
    client = mlflow_client(built_project)
    experiment = client.get_experiment_by_name("moons")
    (parent,) = client.search_runs([experiment.experiment_id], 'tags.kind = "pipeline"')
    runs = client.search_runs([experiment.experiment_id], 'tags.kind = "recipe"')
    recipes = {r.data.tags["recipe"]: r for r in runs}
    order = in_project(built_project, load_params).compared()
    assert sorted(order) == sorted(recipes)
    return {"client": client, "experiment": experiment.experiment_id, "parent": parent.info.run_id,
            "parent_name": parent.info.run_name, "recipes": order,
            "runs": {name: run.info.run_id for name, run in recipes.items()},
            "test_accuracy": {name: {bound: run.data.metrics[f"test_accuracy_{bound}"]
                                     for bound in ("mean", "ci95_low", "ci95_high")}
                              for name, run in recipes.items()},
            "verdict": {name: run.data.tags.get("verdict") for name, run in recipes.items()}}


class Failures:
    """What went wrong in the page: console errors and HTTP responses of 400 and above."""

    def __init__(self, page: Page):
        self.console, self.responses = [], []
        page.on("console", lambda message: self.console.append(message.text) if message.type == "error" else None)
        page.on("response", lambda response: self.responses.append(response.url) if response.status >= 400 else None)

    def assert_none_but_known(self) -> None:
        unexpected = [url for url in self.responses if KNOWN_FAILURE not in url]
        assert not unexpected, f"requests failed: {unexpected}"
        known = len(self.responses)
        other = [text for text in self.console
                 if not text.startswith("Failed to load resource") and BENIGN_CONSOLE not in text]
        failed_loads = [text for text in self.console if text.startswith("Failed to load resource")]
        assert not other and len(failed_loads) <= known, f"console errors: {self.console}"


def settle(page: Page) -> None:
    """Wait for finite animations (a preview fading in) to end, so a screenshot shows the end state."""
    page.wait_for_function("""() => document.getAnimations().every(
        a => a.playState !== "running" || a.effect.getComputedTiming().iterations === Infinity)""")


def decoded_width(image) -> int:
    """The image's natural width once the browser has fetched and decoded it (a broken image raises)."""
    return image.evaluate("img => img.decode().then(() => img.naturalWidth)")


def distinct_colours(image) -> int:
    """How many colours the decoded image has (a blank one has one), counted in the browser."""
    return image.evaluate("""img => img.decode().then(() => {
        const canvas = document.createElement("canvas");
        [canvas.width, canvas.height] = [img.naturalWidth, img.naturalHeight];
        const context = canvas.getContext("2d");
        context.drawImage(img, 0, 0);
        const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
        const colours = new Set();
        for (let i = 0; i < pixels.length; i += 4)
            colours.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
        return colours.size;
    })""")


def revealed(page: Page, locator):
    """locator's first match, scrolled into view: the chart view renders a card
    only when it nears the viewport, so scroll down until it exists."""
    page.mouse.move(VIEWPORT["width"] / 2, 600)
    for _ in range(60):
        if locator.count():
            break
        page.mouse.wheel(0, 1200)
        page.wait_for_timeout(250)
    first = locator.first
    first.scroll_into_view_if_needed()
    return first


def test_the_printed_link_shows_every_recipes_boundary_next_to_the_baselines(page: Page, printed_link: str,
                                                                               store: dict, screenshots: Path):
    """No click: the link `dvc repro` printed opens the chart view of the
    pipeline run and its recipe runs, in the suite's order, with one card per
    recipe holding its decision boundary, the baseline's first: all loaded,
    none blank, although there are more recipes than MLflow's 10-run limit."""
    failures = Failures(page)
    page.goto(printed_link)
    rows = page.locator(RUN_ROW)
    expect(rows.filter(has=page.get_by_role("link", name=store["parent_name"], exact=True))).to_have_count(1)
    for recipe in store["recipes"]:
        expect(page.get_by_role("link", name=recipe, exact=True)).to_have_count(1)
    assert len(store["recipes"]) > 10
    listed = [name.strip() for name in page.locator(f"{RUN_ROW} a").all_inner_texts() if name.strip()]
    assert listed[:len(store["recipes"]) + 1] == [store["parent_name"], *store["recipes"]]

    # as if scrolled through: a card renders when it comes into view
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 4000})
    cards = page.locator(CARD)
    expect(cards.filter(has=page.locator(image_of(f"{BOUNDARY}/{store['recipes'][-1]}")))).to_have_count(1)
    titles = [title for title in cards.get_by_role("heading").all_inner_texts() if title.startswith(f"{BOUNDARY}/")]
    assert titles[0] == f"{BOUNDARY}/baseline"
    assert sorted(titles) == sorted(f"{BOUNDARY}/{recipe}" for recipe in store["recipes"])
    for recipe in store["recipes"]:
        image = cards.locator(image_of(f"{BOUNDARY}/{recipe}")).first
        image.scroll_into_view_if_needed()
        expect(image).to_be_visible()
        assert f"run_uuid={store['parent']}" in image.get_attribute("src")
        assert decoded_width(image) > 100 and distinct_colours(image) > 50, recipe
    for title in ("test_accuracy_mean", "test_accuracy_vs_baseline_mean", "path/l2/dev_accuracy_mean",
                  "curve/squared_weight_sum_mean", "dropout/monte_carlo_nll_mean"):
        card = revealed(page, cards.filter(has=page.get_by_role("heading").filter(has_text=title)))
        expect(card.locator(".js-plotly-plot")).to_be_visible()  # a chart was drawn
    # the weights over training, every recipe's; the loss slices; dropout's three ways; the landscape
    for key in [*FIGURES, "loss_landscapes", "dropout_at_test_time", f"{LANDSCAPE}/bowl"]:
        image = revealed(page, cards.locator(image_of(key)))
        assert decoded_width(image) > 100 and distinct_colours(image) > 50, key
    page.set_viewport_size(VIEWPORT)
    page.locator(CARD).first.scroll_into_view_if_needed()
    settle(page)
    page.screenshot(path=screenshots / "comparison_charts.png")
    failures.assert_none_but_known()


def test_one_click_shows_every_recipes_interval_and_verdict(page: Page, printed_link: str, store: dict,
                                                           screenshots: Path):
    """One click (Table) from the printed link: a row per recipe with its mean
    test accuracy, the ends of its 95% interval and its verdict against the
    baseline, as the store holds them."""
    failures = Failures(page)
    page.goto(printed_link)
    expect(page.get_by_role("link", name="baseline", exact=True)).to_have_count(1)
    page.locator(TABLE_VIEW).click()  # click 1
    for recipe in store["recipes"]:
        link = page.get_by_role("link", name=recipe, exact=True)
        expect(link).to_have_count(1)
        index = page.locator(RUN_ROW).filter(has=link).first.get_attribute("row-index")
        row = page.locator(f'{RUN_ROW}[row-index="{index}"]')
        for bound, value in store["test_accuracy"][recipe].items():
            cell = row.locator(f'[col-id="metrics.`test_accuracy_{bound}`"]')
            expect(cell).to_be_in_viewport(ratio=1)  # on screen, no scrolling
            shown = float(re.match(r"\s*([0-9.eE+-]+)", cell.inner_text()).group(1))
            assert shown == pytest.approx(value, abs=1e-3), (recipe, bound)
        verdict = row.locator('[col-id="tags.`verdict`"]')
        expect(verdict).to_be_in_viewport(ratio=1)
        verdict = verdict.inner_text().strip()
        assert verdict == (store["verdict"][recipe] or "-"), recipe
    settle(page)
    page.screenshot(path=screenshots / "comparison_table.png")
    failures.assert_none_but_known()


def test_every_link_in_every_description_answers(mlflow_ui: str, store: dict):
    """The experiment's and every run's description: each link and embedded
    image answers 200 on the server; the view a link names is stored."""
    client, experiment = store["client"], store["experiment"]
    tags = client.get_experiment(experiment).tags
    descriptions = [tags.get(NOTE, "")] + [run.data.tags.get(NOTE, "") for run in client.search_runs([experiment])]
    links = {link for text in descriptions for link in re.findall(r"\]\(([^)\s]+)\)", text)}
    assert any("get-artifact" in link for link in links) and any("viewStateShareKey=" in link for link in links)
    for link in sorted(links):
        if key := re.search(r"viewStateShareKey=(\w+)", link):
            assert VIEW_TAG + key.group(1) in tags, link
        with urllib.request.urlopen(urljoin(f"{mlflow_ui}/", link), timeout=30) as response:
            assert response.status == 200 and response.read(), link


def test_the_dropout_recipe_predicts_three_ways_in_files_report_and_mlflow(built_project: Path, store: dict):
    """The dropout recipe's weight scaling, Monte Carlo dropout (scored at T =
    1, 2, 5, ... 50) and seed ensemble: evaluate's file, the report's section
    and figure, and the same numbers in its MLflow run; no recipe without
    dropout has any."""
    document = json.loads((built_project / "metrics/moons/dropout/dropout_at_test_time.json").read_text())
    assert document["samples"] == 50 and document["test_points"] == 30  # every test point: fewer than 2 000
    assert document["monte_carlo"]["samples"] == [1, 2, 5, 10, 20, 50] and document["seeds"] == [0, 1]
    suite = in_project(built_project, load_params).suite
    with_dropout = [name for name in store["recipes"] if suite[name].dropout is not None]
    assert len(with_dropout) >= 2 and "baseline" not in with_dropout
    files = sorted(path.parent.name for path in (built_project / "metrics/moons").glob("*/dropout_at_test_time.json"))
    assert files == sorted(with_dropout)
    summary = json.loads((built_project / "reports/moons/summary.json").read_text())["dropout_at_test_time"]
    assert sorted(summary) == sorted(with_dropout)
    assert summary["dropout"]["weight_scaling"]["accuracy"]["mean"] == pytest.approx(
        np.mean(document["weight_scaling"]["accuracy"]))
    page = (built_project / "reports/moons/summary.md").read_text()
    assert "## Dropout at test time" in page and "| dropout | Monte Carlo, T = 50 |" in page
    assert "(figures/dropout_at_test_time.png)" in page
    client, run = store["client"], store["runs"]["dropout"]
    history = client.get_metric_history(run, "dropout/monte_carlo_nll_mean")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [1, 2, 5, 10, 20, 50]
    assert max(history, key=lambda m: m.step).value == pytest.approx(summary["dropout"]["monte_carlo"]["nll"]["mean"])
    metrics = client.get_run(store["runs"]["baseline"]).data.metrics
    assert not [name for name in metrics if name.startswith("dropout/")]
    images = {a.path for a in client.list_artifacts(store["parent"], "images")}
    assert any("dropout_at_test_time" in path for path in images), images


def test_run_page_shows_its_decision_boundary(page: Page, printed_link: str, store: dict, screenshots: Path):
    """From the printed link, a recipe's name opens its run (click 1); its
    Model metrics tab (click 2) has its first seed's decision boundary as an
    image card; a click on it (3) shows the full-size figure."""
    run_id = store["runs"]["l2"]
    page.goto(printed_link)
    page.get_by_role("link", name="l2", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}\b"))
    page.get_by_role("tab", name="Model metrics").click()
    page.get_by_placeholder(CHART_SEARCH).fill(IMAGE_KEY)
    thumbnail = page.locator(f'{CARD} {image_of(IMAGE_KEY)}[src*="run_uuid={run_id}"]')
    expect(thumbnail).to_have_count(1)
    thumbnail_width = decoded_width(thumbnail)
    assert thumbnail_width > 0

    thumbnail.click()
    full_size = page.locator(f'{image_of(IMAGE_KEY)}[src*=".png&run_uuid={run_id}"]')  # the PNG, not the webp thumbnail
    expect(full_size).to_be_visible()
    assert decoded_width(full_size) > thumbnail_width
    settle(page)
    page.screenshot(path=screenshots / "run_decision_boundary.png")


def test_dvc_plots_page_renders_every_plot_with_no_network(page: Page, built_project: Path):
    """The page `dvc plots show` writes (the project's template, Vega inlined)
    opens from disk with every request off the machine refused: each Vega
    plot is drawn, and the page asked for nothing outside its folder."""
    run(["dvc", "plots", "show"], built_project)
    index = built_project / "dvc_plots/index.html"
    html = index.read_text()
    assert "cdn.jsdelivr.net" not in html
    plots = html.count("vegaEmbed(")
    assert plots >= len(in_project(built_project, load_params).compared()) + 1  # learning curves, the path

    outside = []
    page.route(re.compile(r"^(?!file://).*"), lambda route: (outside.append(route.request.url), route.abort()))
    failures = Failures(page)
    page.goto(index.as_uri())
    drawn = page.locator(".vega-embed:has(svg, canvas)")
    expect(drawn).to_have_count(plots)
    assert all(box["width"] > 100 and box["height"] > 50 for box in (p.bounding_box() for p in drawn.all()))
    assert not outside, outside
    failures.assert_none_but_known()


def test_report_page_sliders_switch_boundary_and_histogram_with_no_network(page: Page, built_project: Path):
    """reports/moons/index.html opened from disk, as a user opens it: the
    training-step slider and each path's strength slider, moved with the
    keyboard, switch the boundary image, the weight histogram and the value
    shown; the page asks for nothing but itself and its data: images."""
    index = built_project / "reports/moons/index.html"
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    failures = Failures(page)
    page.goto(index.as_uri())
    sliders = page.locator(".explore-slider")
    expect(sliders).to_have_count(1 + len(in_project(built_project, load_params).paths))

    def shown(slider) -> tuple[str, str, str]:
        return (slider.locator("img").first.get_attribute("src"),
                slider.locator("canvas").first.evaluate("canvas => canvas.toDataURL()"),
                slider.locator("output").text_content())

    for slider in sliders.all():
        before = shown(slider)
        knob = slider.locator("input[type=range]")
        at_end = knob.get_attribute("value") == knob.get_attribute("max")
        knob.focus()
        page.keyboard.press("Home" if at_end else "End")
        after = shown(slider)
        assert all(a != b for a, b in zip(before, after)), (before[2], after[2])
        assert after[0].startswith("data:image/png;base64,")
    steps = sliders.first
    expect(steps.locator("output")).to_have_text("step 0")  # the step slider starts at the end of training
    expect(steps.locator("img")).to_have_count(len(in_project(built_project, load_params).compared()))
    assert requests and all(url == index.as_uri() or url.startswith("data:") for url in requests), set(requests)
    failures.assert_none_but_known()
