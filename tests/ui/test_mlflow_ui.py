"""The MLflow UI in a real headless Chromium, over the store a real, small
`dvc repro` filled (moons; recipes baseline and l2; seeds 0 and 1): what the
README's "Comparing in the MLflow UI" promises a user can click through.

The selectors follow MLflow's UI of the installed version (see SELECTORS);
an MLflow upgrade that moves them fails here first, not in a user's hands.
`UPDATE_SCREENSHOTS=1 pytest tests/ui` rewrites the README's screenshots in
docs/ui/; otherwise they go to a temporary folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, urlencode

import pytest
from conftest import ROOT, mlflow_client, mlflow_server
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: Playwright's own browser download is not allowed here
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"no {CHROMIUM}: install Debian's chromium (apt-get install chromium)")

RECIPES, SEEDS = ["baseline", "l2"], [0, 1]
RECIPE_RUNS = 'tags.kind = "recipe"'  # a search filter: each recipe's run (its evidence over seeds), nested in the pipeline's
IMAGE_KEY = "decision_boundary"  # MlflowClient.log_image(run_id, image, key=IMAGE_KEY, step=...)
VIEWPORT = {"width": 1280, "height": 800}
UI_TIMEOUT_MS = 20_000  # Playwright's 5 s default is short for MLflow's 22 MB of JavaScript on 2 busy cores

# MLflow 3.17's UI: the hooks this test (and the README's walk) relies on.
RUNS_SEARCH = 'metrics.rmse < 1 and params.model = "tree"'  # placeholder of the runs search box
CHART_SEARCH = "Search metric charts"  # placeholder of the chart view's (and run page's) chart filter
COLUMN_TREE = '[data-testid="column-selector-tree"]'
RUN_EXPANDER = 'button[data-component-id*="runnamecellrenderer"]'  # the ⊞ before a parent run's name
CARD = '[data-testid="experiment-view-compare-runs-card"]'
CARD_MENU = '[data-testid="experiment-view-compare-runs-card-menu"]'
CARD_CONFIGURE = '[data-testid="experiment-view-compare-runs-card-edit"]'
CARD_FULLSCREEN = '[data-component-id="fullscreen_button_chartcard"]'
# an image card's <img> loads get-artifact?path=images/<key>+step+<step>+...&run_uuid=<run>
IMAGE_OF_KEY = f'img[src*="{quote(f"images/{IMAGE_KEY}+", safe="")}"]'


@pytest.fixture(scope="module")
def mlflow_ui(built_project: Path, tmp_path_factory) -> Iterator[str]:
    """`mlflow server` over the pipeline's SQLite store, as the README starts
    it; it serves the runs' artifacts from their experiment's file:// location."""
    log = tmp_path_factory.mktemp("mlflow-server") / "server.log"
    with mlflow_server(f"sqlite:///{built_project / 'mlflow.db'}", log, built_project) as (url, ready):
        ready()
        yield url


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
    """What the UI should show, read with MLflow's client: the experiment's
    id, each recipe's run id, each recipe's mean test accuracy over seeds,
    and the keys of each run's logged images (artifacts images/<key>+step+...)."""
    client = mlflow_client(built_project)
    experiment = client.get_experiment_by_name("moons").experiment_id
    runs = client.search_runs([experiment], RECIPE_RUNS)
    return {"experiment": experiment,
            "runs": {r.data.tags["recipe"]: r.info.run_id for r in runs},
            "mean_test_accuracy": {r.data.tags["recipe"]: r.data.metrics["test_accuracy_mean"] for r in runs},
            "image_keys": {r.info.run_id: {Path(a.path).name.split("+")[0] for a in client.list_artifacts(
                r.info.run_id, "images")} for r in runs}}


def assert_logged_images(store: dict, run_ids: list[str]) -> None:
    """The pipeline's side of the contract, checked before the UI's, so a failure says which side broke."""
    for run_id in run_ids:
        assert IMAGE_KEY in store["image_keys"][run_id], (
            f"run {run_id} logged no {IMAGE_KEY!r} image (MlflowClient.log_image(..., key={IMAGE_KEY!r}, step=...)); "
            f"its image keys: {sorted(store['image_keys'][run_id])}")


def search_runs(page: Page, filter_string: str) -> None:
    box = page.get_by_placeholder(RUNS_SEARCH)
    box.fill(filter_string)
    box.press("Enter")


def runs_page(base_url: str, experiment: str, filter_string: str = "", view: str = "TABLE") -> str:
    """The experiment's runs in the Model training (not GenAI) layout, filtered and in the given view."""
    query = urlencode({"workflowType": "machine_learning", "searchFilter": filter_string, "compareRunsMode": view})
    return f"{base_url}/#/experiments/{experiment}/runs?{query}"


def expand_pipeline_run(page: Page) -> None:
    """Recipe runs are nested under their pipeline run, which MLflow lists
    collapsed: one click on its expander lists them (and puts them in the charts)."""
    parent = page.locator('[role="row"]').filter(has=page.get_by_role("link", name=re.compile(r"^pipeline ")))
    parent.locator(RUN_EXPANDER).click()


def settle(page: Page) -> None:
    """Wait for finite animations (a preview fading in) to end, so a screenshot shows the end state."""
    page.wait_for_function("""() => document.getAnimations().every(
        a => a.playState !== "running" || a.effect.getComputedTiming().iterations === Infinity)""")


def decoded_width(image) -> int:
    """The image's natural width once the browser has fetched and decoded it (a broken image raises)."""
    return image.evaluate("img => img.decode().then(() => img.naturalWidth)")


def test_experiment_page_lists_each_recipe_with_its_mean_over_seeds(page: Page, mlflow_ui: str, store: dict,
                                                                    screenshots: Path):
    """The README's first clicks: Model training, moons, the pipeline run
    expanded, a test_accuracy_mean column: a row per recipe, its mean over seeds."""
    page.goto(mlflow_ui)
    page.get_by_text("Model training", exact=True).click()
    page.get_by_role("link", name="moons", exact=True).click()
    expect(page).to_have_url(re.compile(rf"#/experiments/{store['experiment']}/runs\b"))
    search_runs(page, RECIPE_RUNS)
    expand_pipeline_run(page)
    page.get_by_role("button", name="Columns").click()
    page.locator(COLUMN_TREE).get_by_text("test_accuracy_mean", exact=True).click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Toggle sidebar").click()  # room for the column at 1280 pixels

    for recipe in RECIPES:
        link = page.get_by_role("link", name=recipe, exact=True)
        expect(link).to_have_count(1)
        row_index = page.locator('[role="row"]').filter(has=link).first.get_attribute("row-index")
        mean = page.locator(f'[role="row"][row-index="{row_index}"] [col-id="metrics.`test_accuracy_mean`"]')
        shown = float(re.match(r"\s*([0-9.eE+-]+)", mean.inner_text()).group(1))
        assert shown == pytest.approx(store["mean_test_accuracy"][recipe], abs=1e-3)
    page.screenshot(path=screenshots / "experiment_recipes.png")


def test_run_page_shows_its_decision_boundary(page: Page, mlflow_ui: str, store: dict, screenshots: Path):
    """A recipe run's Model metrics tab has its first seed's decision boundary
    as an image card; a click on it shows the full-size figure."""
    run_id = store["runs"]["l2"]
    assert_logged_images(store, [run_id])
    page.goto(runs_page(mlflow_ui, store["experiment"], RECIPE_RUNS))
    expand_pipeline_run(page)
    page.get_by_role("link", name="l2", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}\b"))
    page.get_by_role("tab", name="Model metrics").click()
    page.get_by_placeholder(CHART_SEARCH).fill(IMAGE_KEY)
    thumbnail = page.locator(f'{CARD} {IMAGE_OF_KEY}[src*="run_uuid={run_id}"]')
    expect(thumbnail).to_have_count(1)
    thumbnail_width = decoded_width(thumbnail)
    assert thumbnail_width > 0

    thumbnail.click()
    full_size = page.locator(f'{IMAGE_OF_KEY}[src*=".png&run_uuid={run_id}"]')  # the PNG, not the webp thumbnail
    expect(full_size).to_be_visible()
    assert decoded_width(full_size) > thumbnail_width
    settle(page)
    page.screenshot(path=screenshots / "run_decision_boundary.png")


def test_chart_view_shows_two_runs_boundaries_side_by_side(page: Page, mlflow_ui: str, store: dict,
                                                            screenshots: Path):
    """Each recipe's run in the chart view: the decision-boundary image card,
    run parameters hidden, full screen, shows the two boundaries in one row."""
    assert_logged_images(store, [store["runs"][recipe] for recipe in RECIPES])
    page.goto(runs_page(mlflow_ui, store["experiment"], RECIPE_RUNS, view="CHART"))
    expand_pipeline_run(page)
    for recipe in RECIPES:
        expect(page.get_by_role("link", name=recipe, exact=True)).to_have_count(1)
    page.get_by_placeholder(CHART_SEARCH).fill(IMAGE_KEY)
    card = page.locator(CARD).filter(has=page.get_by_role("heading", name=IMAGE_KEY, exact=True))
    expect(card).to_have_count(1)

    card.locator(CARD_MENU).click()
    page.locator(CARD_CONFIGURE).click()
    show_parameters = page.get_by_role("switch", name="Show run parameters")
    expect(show_parameters).to_be_checked()
    show_parameters.click()  # each run's long parameter list would push the images under one another
    page.get_by_role("button", name="Save changes").click()
    card.locator(CARD_FULLSCREEN).click()

    images = page.get_by_role("dialog").locator(IMAGE_OF_KEY)
    expect(images).to_have_count(2)
    shown = {re.search(r"run_uuid=(\w+)", image.get_attribute("src")).group(1) for image in images.all()}
    assert shown == {store["runs"][recipe] for recipe in RECIPES}
    assert all(decoded_width(image) > 0 for image in images.all())
    left, right = sorted((image.bounding_box() for image in images.all()), key=lambda box: box["x"])
    assert abs(left["y"] - right["y"]) < 2 and right["x"] >= left["x"] + left["width"]  # one row, not overlapping
    settle(page)
    page.screenshot(path=screenshots / "chart_view_two_boundaries.png")
