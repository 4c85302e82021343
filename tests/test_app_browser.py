"""The app once in a real browser: Debian's Chromium driven by Playwright, headless.

Uploads an example, checks the 3D plot appears, then analysis by synthesis (the input, generated
and difference crops, and the example's error per joint), moves a named slider (the plot changes,
the attribute's note appears), plays a walk between two uploaded frames (the animation advances)
and makes its GIF.
With CROSSINGNETS_SCREENSHOTS=DIR it also saves one screenshot per tab there (the README's
`docs/app_*.png` are made so).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crossingnets_app.launch import OFFLINE_ENV, bundled_checkpoint, running_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "examples"
TIMEOUT_MS = 60_000  # the 2 shared CPU cores render WebGL in software

PLOT_DATA = "() => [...document.querySelectorAll('.js-plotly-plot')].map(e => JSON.stringify(e.data))"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.is_file(), reason=f"{CHROMIUM} not installed (apt-get install -y chromium)"
    ),
]


@pytest.fixture(scope="module")
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    os.environ.update(OFFLINE_ENV)
    with (
        running_app(bundled_checkpoint()) as url,
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            page.get_by_role("button", name="Estimate pose").wait_for()
            yield page
        finally:
            browser.close()


def screenshot(page, tab: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("CROSSINGNETS_SCREENSHOTS", tmp_path))
    page.screenshot(path=str(folder / f"app_{tab}.png"), full_page=True)


def test_upload_slider_walk(page, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    # upload: an example frame -> the 3D plot (a WebGL scene with the six finger traces)
    page.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "synthetic_nyu_0.png"))
    page.get_by_text("server side").wait_for()
    page.locator("[data-testid=plotly] .main-svg").first.wait_for()
    scene = "() => { const e = document.querySelector('.js-plotly-plot'); return [e.data.length, !!e._fullLayout.scene] }"
    assert page.evaluate(scene) == [6, True]
    # one click on an example row estimates that example
    summary = page.get_by_text("server side")
    first = summary.text_content()
    page.get_by_text("synthetic_nyu_1.png").click()
    sync_api.expect(summary).not_to_have_text(first, timeout=TIMEOUT_MS)
    # analysis by synthesis: input, generated and difference crops, and (an example has labels)
    # the error of each of its 14 joints
    for label in ("Input crop (mm)", "Generated crop", "Difference, gen - input (mm)"):
        page.get_by_text(label).first.wait_for()
    # the preview, the overlay and the three crops of analysis by synthesis
    page.wait_for_function("() => document.querySelectorAll(\"img[src*='image.png']\").length >= 5")
    page.get_by_text("mean joint error").wait_for()
    bars = (
        "() => [...document.querySelectorAll('.js-plotly-plot')]"
        ".filter(e => e.data[0].type === 'bar').map(e => e.data[0].y.length)"
    )
    page.wait_for_function(f"() => ({bars})().length > 0")
    assert page.evaluate(bars) == [14]
    page.wait_for_timeout(1000)  # let WebGL draw before the screenshot
    screenshot(page, "upload", tmp_path)

    # latent: move the "index curl" named slider with the keyboard -> the decoded pose changes
    page.get_by_role("tab", name="Latent").click()
    page.get_by_role("button", name="Reset", exact=True).click()
    page.wait_for_timeout(1500)
    before = page.evaluate(PLOT_DATA)
    slider = page.locator("#named_index_curl input[type=range]")
    slider.focus()
    for _ in range(15):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        f"before => JSON.stringify(({PLOT_DATA})()) !== JSON.stringify(before)", arg=before
    )
    page.locator("strong", has_text="index curl").wait_for()  # the note: asked, got, the others held
    last_traces = "() => [...document.querySelectorAll('.js-plotly-plot')].map(e => e.data.at(-1).name)"
    assert "generated depth" in page.evaluate(last_traces)  # the hand's points around the skeleton
    page.wait_for_timeout(1500)
    screenshot(page, "latent", tmp_path)

    # walk: two uploaded frames -> the walk between them; Play advances its animation
    page.get_by_role("tab", name="Walk").click()
    page.get_by_text("Two uploaded frames (walk between them)").click()
    page.locator("#walk_file_a input[type=file]").set_input_files(str(EXAMPLES / "synthetic_nyu_0.png"))
    page.locator("#walk_file_b input[type=file]").set_input_files(str(EXAMPLES / "synthetic_nyu_2.png"))
    sync_api.expect(page.get_by_label("two uploaded frames")).to_be_checked()  # chosen by the upload
    page.get_by_role("button", name="Walk", exact=True).click()
    animation = page.frame_locator("iframe").first
    animation.locator(".updatemenu-button", has_text="Play").click()
    frame = next(f for f in page.frames if f.url == "about:srcdoc")
    frame.wait_for_function("() => document.querySelector('.js-plotly-plot').layout.sliders[0].active > 0")
    page.get_by_role("button", name="Make the walk's GIF").click()
    page.locator("img[src*='walk.gif']").first.wait_for()
    page.wait_for_timeout(1000)
    screenshot(page, "walk", tmp_path)
