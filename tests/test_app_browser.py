"""The app in a real browser: Debian's chromium driven by Playwright, on the untrained tiny model.

Needs /usr/bin/chromium (CI: `apt-get update && apt-get install -y chromium`); Playwright's own
browser download is never used.
"""
import io
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import running_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STEP_TIMEOUT_MS = 120_000  # one model step on a busy 2-core CI machine


@contextmanager
def opened_page(url: str):
    """A headless chromium page on `url`, once the app's page is built."""
    assert CHROMIUM.exists(), "install Debian's chromium: apt-get update && apt-get install -y chromium"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#lit-load-sample", timeout=60_000)
        yield page
        browser.close()


@pytest.fixture(scope="module")
def server():
    from litdemo.app import AppConfig

    cfg = AppConfig(image_size=256, pretrained=False, sample_frames=3, sample_height=96, sample_width=128,
                    train_steps_first=6, train_steps_later=3)
    with running_app(cfg) as (_, url):
        yield url


@pytest.fixture
def page(server):
    with opened_page(server) as page:
        yield page


def element_pixels(page, selector: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB"))


def click_image_at(page, selector: str, x: float, y: float, natural_size: tuple[int, int]) -> None:
    """Click the displayed image where the natural-size pixel (x, y) is (the image is scaled to fit)."""
    page.locator(selector).scroll_into_view_if_needed()  # mouse clicks use viewport coordinates
    box = page.locator(selector).bounding_box()
    w, h = natural_size
    scale = min(box["width"] / w, box["height"] / h)
    left = box["x"] + (box["width"] - w * scale) / 2
    top = box["y"] + (box["height"] - h * scale) / 2
    page.mouse.click(left + (x + 0.5) * scale, top + (y + 0.5) * scale)


def wait_text(page, selector: str, text: str) -> None:
    page.locator(selector).filter(has_text=text).first.wait_for(timeout=STEP_TIMEOUT_MS)


def wait_idle(page) -> None:
    """Until the frame's status tracker is hidden: no event (or stream) is updating it any more."""
    page.wait_for_function("() => { const s = document.querySelector('#lit-frame [data-testid=status-tracker]');"
                           " return s !== null && s.classList.contains('hide'); }", timeout=STEP_TIMEOUT_MS)


def test_click_propagate_correct_in_the_browser(page, tmp_path):
    try:
        run_workflow(page, tmp_path)
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)  # what the page showed
        print(f"failure screenshot: {tmp_path / 'failure.png'}")
        raise


def run_workflow(page, tmp_path):
    from litdemo.datasets.synthetic import make_synthetic_video

    # an action before any video: a message, not a traceback, and the page still works
    page.click("#lit-propagate")
    page.get_by_text("Load a video first").first.wait_for(timeout=30_000)
    assert "Traceback" not in page.content()

    page.click("#lit-load-sample")
    wait_text(page, "#lit-status", "UNTRAINED")
    frame_img = "#lit-frame img"
    page.locator(frame_img).wait_for()
    before = element_pixels(page, frame_img)

    # the same synthetic video the app renders: click on the object's centre in frame 0
    gt = make_synthetic_video(num_frames=3, height=96, width=128, num_objects=1, seed=0).gt[1]
    ys, xs = np.nonzero(gt[0])
    click_image_at(page, frame_img, xs.mean(), ys.mean(), (128, 96))
    wait_text(page, "#lit-frame-info", "prompted")
    after = element_pixels(page, frame_img)
    changed = np.abs(after.astype(int) - before.astype(int)).sum(-1) > 30
    assert changed.mean() > 0.01, "no mask overlay appeared after the click"

    page.click("#lit-propagate")
    wait_text(page, "#lit-frame-info", "Frame 2 of 2")
    wait_idle(page)
    wait_text(page, "#lit-frame-info", "tracked")
    strip = element_pixels(page, "#lit-timeline img")
    colours = {tuple(c) for c in strip.reshape(-1, 3)}
    assert any(np.abs(np.array(c) - (199, 215, 232)).sum() < 12 for c in colours), "no 'tracked' marks"
    assert any(np.abs(np.array(c) - (31, 119, 180)).sum() < 12 for c in colours), "no 'prompted' mark"

    # jump to frame 1 through the timeline, then correct it with a click
    page.locator("#lit-timeline img").scroll_into_view_if_needed()
    box = page.locator("#lit-timeline img").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.3)
    wait_text(page, "#lit-frame-info", "Frame 1 of 2")
    ys, xs = np.nonzero(gt[1])
    click_image_at(page, frame_img, xs.mean(), ys.mean(), (128, 96))
    wait_text(page, "#lit-frame-info", "pending")
    page.click("#lit-correct")
    wait_text(page, "#lit-status", "1 correction(s)")
    plot = page.locator("#lit-training-plot img").first
    plot.wait_for(timeout=STEP_TIMEOUT_MS)
    curve = element_pixels(page, "#lit-training-plot img")
    assert curve.shape[0] > 100 and (curve.std(axis=(0, 1)) > 10).any(), "the training curve is blank"
    wait_idle(page)  # the correction's stream: train, track on from frame 1, come back to it
    wait_text(page, "#lit-frame-info", "Frame 1 of 2")
    strip = element_pixels(page, "#lit-timeline img")
    assert any(np.abs(np.array(c) - (214, 39, 40)).sum() < 12 for c in {tuple(c) for c in strip.reshape(-1, 3)})

    shot = tmp_path / "app.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


# ---------------------------------------------------------------- issue 14: the workshop app, offline, on micro
SIMULATE_TIMEOUT_MS = 900_000  # two simulated users over 32 frames with the paper's schedule, on a busy CPU


@pytest.fixture(scope="module")
def offline_server(tmp_path_factory):
    """The app as a first start on a machine without weights or network: it must land on micro."""
    from huggingface_hub import constants

    from litdemo.app import AppConfig

    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.delenv("LITDEMO_SAM2_CHECKPOINT", raising=False)
    mp.setenv("LITDEMO_CHECKPOINT_DIR", str(tmp_path_factory.mktemp("no-weights")))
    mp.setenv("HF_HUB_CACHE", str(tmp_path_factory.mktemp("empty-hub-cache")))
    was_offline = constants.HF_HUB_OFFLINE
    # the defaults a user gets: SAM2.1 tiny asked for, the paper's training schedule
    with running_app(AppConfig()) as (_, url):
        yield url
    constants.HF_HUB_OFFLINE = was_offline
    mp.undo()


@pytest.fixture
def offline_page(offline_server):
    with opened_page(offline_server) as page:
        yield page


def no_error_badges(page) -> None:
    trackers = page.locator("[data-testid=status-tracker]").all_inner_texts()
    assert not any("Error" in t for t in trackers), f"error badges on the page: {trackers}"


def with_screenshot(page, tmp_path, run):
    try:
        run()
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"failure screenshot: {tmp_path / 'failure.png'}")
        raise


def choose_sample(page, name: str) -> None:
    """Pick `name` in the sample dropdown: open its list, click the option."""
    page.locator("#lit-sample input").click()
    page.get_by_role("option", name=name, exact=True).click()
    assert page.locator("#lit-sample input").input_value() == name


def load_tour_sample(page):
    page.click("#lit-load-sample")
    wait_text(page, "#lit-status", "micro: trained on litdemo's synthetic videos")
    page.locator("#lit-frame img").wait_for()


def go_to_frame(page, frame: int, num_frames: int) -> None:
    """Click the frame's cell on the timeline strip (the picture is scaled to fit its box)."""
    from litdemo.app import render

    strip = page.locator("#lit-timeline img")
    strip.scroll_into_view_if_needed()
    w, h = strip.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    cell = render.timeline_cell(num_frames)
    click_image_at(page, "#lit-timeline img", (frame + 0.5) * cell * w / (cell * num_frames), h * 0.3, (w, h))
    wait_text(page, "#lit-frame-info", f"Frame {frame} of {num_frames - 1}")


def click_object(page, mask) -> None:
    ys, xs = np.nonzero(mask)
    click_image_at(page, "#lit-frame img", xs.mean(), ys.mean(), (mask.shape[1], mask.shape[0]))


def test_offline_start_lands_on_micro_with_its_banner_and_no_error_badges(offline_page, tmp_path):
    page = offline_page

    def run():
        banner = page.locator("#lit-banner")
        banner.wait_for(timeout=30_000)
        assert "Offline start" in banner.inner_text() and "micro" in banner.inner_text()
        page.click("#lit-propagate")  # a user error before any video: a warning, the page stays as it was
        page.get_by_text("Load a video first").first.wait_for(timeout=30_000)
        no_error_badges(page)
        load_tour_sample(page)
        assert "128 px" in page.locator("#lit-status").inner_text()
        no_error_badges(page)
        assert "Traceback" not in page.content()

    with_screenshot(page, tmp_path, run)


# The browser check, on the sample the page opens with (the appearance change, tour-263: SAM2 alone 21,
# LIT-LoRA 17 when it was picked). tests/test_app_tour.py checks every tour sample through the same handler.
def test_simulate_on_a_tour_sample_shows_fewer_lit_lora_corrections(offline_page, tmp_path):
    import re

    from litdemo.app.samples import TOUR

    page = offline_page
    look_alike = TOUR[1]  # the shortest Simulate of the three (tests/test_app_tour.py checks each of them)

    def run():
        choose_sample(page, look_alike.name)
        load_tour_sample(page)
        wait_text(page, "#lit-status", f"{look_alike.split}-{look_alike.index}")
        page.click("#lit-simulate")
        page.locator("#lit-simulation-info").filter(has_text="corrections saved").first.wait_for(
            timeout=SIMULATE_TIMEOUT_MS)
        info = page.locator("#lit-simulation-info").inner_text()
        found = re.search(r"sam2 needed (\d+) corrections, lit-lora needed (\d+)", info)
        assert found, info
        sam2, lit = int(found.group(1)), int(found.group(2))
        print(f"browser Simulate: SAM2 alone {sam2}, LIT-LoRA {lit}")
        assert lit < sam2, info
        no_error_badges(page)

    with_screenshot(page, tmp_path, run)


def test_three_suggestion_picker_accepts_the_chosen_adapter(offline_page, tmp_path):
    from litdemo.app.samples import TOUR

    page = offline_page
    gt = TOUR[0].render().gt[1]
    k = 8

    def run():
        page.get_by_text("2 · Model").first.click()  # the accordion starts closed
        page.locator("#lit-adapters input").check()
        load_tour_sample(page)
        click_object(page, gt[0])
        wait_text(page, "#lit-frame-info", "prompted")
        page.click("#lit-propagate")
        wait_text(page, "#lit-frame-info", "Frame 31 of 31")
        wait_idle(page)
        go_to_frame(page, k, 32)
        click_object(page, gt[k])
        wait_text(page, "#lit-frame-info", "pending")
        page.click("#lit-correct")
        wait_text(page, "#lit-status", "1 correction(s)")
        wait_idle(page)
        go_to_frame(page, k + 4, 32)
        wait_text(page, "#lit-picker-info", "adapters")
        thumbs = page.locator("#lit-picker-gallery img")
        thumbs.first.wait_for(timeout=STEP_TIMEOUT_MS)
        options = page.locator("#lit-picker-choice label")
        assert options.count() == thumbs.count() >= 1
        chosen = options.count() - 1  # the last adapter offered (with one adapter: the only one)
        label = options.nth(chosen).inner_text()
        adapter = int(label.split("adapter ")[1].split(" ")[0])
        options.nth(chosen).click()
        page.click("#lit-picker-accept")
        wait_text(page, "#lit-picker-info", f"Accepted on this frame: adapter {adapter}'s suggestion")
        wait_text(page, "#lit-status", "1 accepted suggestion(s)")
        no_error_badges(page)

    with_screenshot(page, tmp_path, run)
