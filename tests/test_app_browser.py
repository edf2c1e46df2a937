"""The app in a real browser: Debian's chromium driven by Playwright, on the untrained tiny model.

Needs /usr/bin/chromium (CI: `apt-get update && apt-get install -y chromium`); Playwright's own
browser download is never used.
"""
import io
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STEP_TIMEOUT_MS = 120_000  # one model step on a busy 2-core CI machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    from litdemo.app import AppConfig, build_demo, launch_options

    cfg = AppConfig(image_size=256, pretrained=False, sample_frames=3, sample_height=96, sample_width=128,
                    train_steps_first=6, train_steps_later=3)
    demo = build_demo(cfg)
    port = free_port()
    demo.queue(default_concurrency_limit=cfg.concurrency_limit).launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options(cfg))
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture
def page(server):
    assert CHROMIUM.exists(), "install Debian's chromium: apt-get update && apt-get install -y chromium"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(server)
        page.wait_for_selector("#lit-load-sample", timeout=60_000)
        yield page
        browser.close()


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
