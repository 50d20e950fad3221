"""Pages opened in a real browser: Debian's chromium (`apt-get install chromium`; .ci/run installs it), driven by
Playwright with the system browser's path (Playwright's own browser download cannot run here). Screenshots go to
test-output/screenshots/ under the checkout, kept as the test run's artefacts."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Seen:
    """What the browser reported while the page loaded."""

    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


@contextmanager
def browser_page():
    """A fresh page of a headless chromium, and what it reports."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    seen = Seen()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda message: seen.console_errors.append(message.text)
                    if message.type == "error" else None)
            page.on("pageerror", lambda error: seen.console_errors.append(str(error)))
            page.on("requestfailed", lambda request: seen.failed_requests.append(request.url))
            yield page, seen
        finally:
            browser.close()


def broken_images(page) -> list[str]:
    """The sources of the <img> elements that did not load (no pixels); an inline image by its first characters."""
    return page.eval_on_selector_all(
        "img", "els => els.filter(e => !(e.complete && e.naturalWidth > 0)).map(e => e.src.slice(0, 120))")


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def mlflow_ui_shows_the_run(project: Path, log: Path) -> dict:
    """Start the MLflow UI on the project's store, open the newest pipeline run whose report stage ran, and return
    what a reviewer sees there: the child runs it lists, the artifact folders, and the files in `report/`."""
    import mlflow
    from conftest import BIN, MLFLOW_SERVER_ARGS, MLFLOW_SERVER_ENV, Service, free_port

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("rlaif")
    (parent,) = client.search_runs([experiment.experiment_id], "attributes.run_name = 'pipeline' and "
                                   "tags.`stage.report` = 'ran'", order_by=["attributes.start_time DESC"],
                                   max_results=1)
    port = free_port()
    server = Service("mlflow ui", [str(BIN / "mlflow"), "server", "--backend-store-uri",
                                   f"sqlite:///{project / 'mlflow.db'}", "--host", "127.0.0.1", "--port", str(port),
                                   *MLFLOW_SERVER_ARGS], {**os.environ, **MLFLOW_SERVER_ENV}, log, cwd=project)
    try:
        server.wait_for(f"http://127.0.0.1:{port}/health", timeout=180)
        with browser_page() as (page, seen):
            page.goto(f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs/{parent.info.run_id}")
            label = page.get_by_text("Child runs", exact=True).first
            label.wait_for(timeout=120_000)
            children = label.locator("xpath=..")
            for _ in range(120):  # the names arrive after the label ("Child runs loading")
                if "loading" not in children.inner_text():
                    break
                page.wait_for_timeout(500)
            children = children.inner_text()
            page.get_by_text("Artifacts", exact=True).first.click()
            page.get_by_text("report", exact=True).first.click()
            page.get_by_text("run.html", exact=True).first.wait_for(timeout=60_000)
            shot = screenshot(page, "mlflow-run-artifacts")
            listed = page.inner_text("body")
        return {"run_id": parent.info.run_id, "children": children, "listed": listed, "screenshot": shot,
                "stages_ran": sorted(k[len("stage."):] for k, v in parent.data.tags.items()
                                     if k.startswith("stage.") and v == "ran")}
    finally:
        server.stop()


def prefect_ui_retry(ui_url: str, run_id: str) -> Path:
    """On a failed flow run's page of the Prefect UI, click Retry and confirm it in the dialog, as an engineer does
    after fixing the cause. Returns the screenshot of the page after the click."""
    with browser_page() as (page, _):
        page.goto(f"{ui_url}/runs/flow-run/{run_id}")
        page.get_by_role("button", name="Retry").first.click(timeout=120_000)
        page.get_by_role("dialog").get_by_role("button", name="Retry").click()
        page.get_by_role("dialog").wait_for(state="hidden", timeout=60_000)
        return screenshot(page, "prefect-retry")


def prefect_ui_sign_off(ui_url: str, run_id: str, approve: bool, reviewer: str, reason: str) -> tuple[str, Path]:
    """On a paused flow run's page of the Prefect UI, click Resume, fill the sign-off form the run asked for and
    submit it. Returns the form's text as the reviewer saw it, and a screenshot of the filled form."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with browser_page() as (page, _):
        page.goto(f"{ui_url}/runs/flow-run/{run_id}")
        page.get_by_role("button", name="Resume").click(timeout=120_000)
        form = page.get_by_role("dialog")
        form.locator("textarea").nth(1).wait_for(timeout=60_000)
        form.get_by_role("button", name="Submit").click()  # empty: the form must refuse it and stay open
        page.wait_for_timeout(3000)
        assert form.is_visible(), "the sign-off form accepted an answer without reviewer and reason"
        if approve:
            form.get_by_role("switch").click()
        form.locator("textarea").nth(0).fill(reviewer)
        form.locator("textarea").nth(1).fill(reason)
        shown, shot = form.inner_text(), screenshot(page, f"prefect-sign-off-{'approve' if approve else 'reject'}")
        answered = []
        page.on("response", lambda r: answered.append(r.status) if r.url.endswith(f"/flow_runs/{run_id}/resume") else None)
        for _ in range(4):  # a server busy with the run's own writes can drop the form's validation call (SQLite
            form.get_by_role("button", name="Submit").click()  # lock, 503): nothing happens, and a reviewer clicks again
            with suppress(PlaywrightTimeout):
                form.wait_for(state="hidden", timeout=30_000)
            if not form.is_visible():
                break
        assert not form.is_visible(), f"the sign-off form did not submit: {form.inner_text()}"
        assert answered and answered[-1] < 300, answered
        return shown, shot
