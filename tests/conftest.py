"""Shared fixtures: a random-init SAM2.1 tiny at 128 px (and at 256 px where a test needs finer masks), the
shipped micro model and small synthetic videos."""
import os
import socket
from contextlib import contextmanager
from pathlib import Path

# One torch thread per process, set before torch loads its OpenMP runtime (notebook kernels, benchmark workers
# and app servers started by the tests inherit it). The suite runs as two pytest-xdist workers on the 2-core CI
# machine (pyproject.toml); with torch's default of one thread per core, two busy workers oversubscribe the
# cores and OpenMP's spin-waiting made the suite slower than one process: 31:25 against 23:52 serially, one
# notebook 66 s -> 456 s; with one thread each, 13:58 (measured 2026-12-02). The models here are tiny: a second
# thread bought little even alone (micro propagates 39.2 frames/s on one thread, 39.9 on two: docs/micro.md).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

os.environ.setdefault("TQDM_DISABLE", "1")        # keep sam2's progress bars out of test logs
os.environ.setdefault("HF_HUB_OFFLINE", "1")      # tests never reach for the network
os.environ.setdefault("MPLBACKEND", "Agg")

# The random-init tiny's input size: 128 px runs the same code as 1024 px (SAM2's architecture at a
# smaller input) at ~1/3 of 256 px's cost. Its masks come from 32x32 logits, too coarse for the few
# tests that fit a 32-pixel square to IoU 0.9: those take `predictor_256`.
IMAGE_SIZE = 128

# The DAVIS-2016 sample lives beside the repository (../shared/data/davis2016); the variable
# may point elsewhere.
_DEFAULT_DAVIS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis2016"
if _DEFAULT_DAVIS.is_dir():
    os.environ.setdefault("LITDEMO_DAVIS_ROOT", str(_DEFAULT_DAVIS))


@pytest.fixture(scope="session")
def predictor():
    from litdemo.models import load_sam2

    torch.manual_seed(0)
    return load_sam2("tiny", pretrained=False, image_size=IMAGE_SIZE, device="cpu")


@pytest.fixture(scope="session")
def predictor_256():
    """The same random-init tiny at 256 px: its 64x64 mask logits let LIT-FT fit the test square to IoU 0.9."""
    from litdemo.models import load_sam2

    torch.manual_seed(0)
    return load_sam2("tiny", pretrained=False, image_size=256, device="cpu")


@pytest.fixture(scope="session")
def micro():
    """litdemo's shipped micro SAM2 (trained on its synthetic videos, not SAM2.1) at its own 128 px."""
    from litdemo.models import load_sam2

    return load_sam2("micro", device="cpu")


def moving_square(num_frames=10, height=96, width=128, step=4, seed=0):
    """A red square sliding right over a dark noisy background: frames (T,H,W,3), masks (T,H,W)."""
    rng = np.random.default_rng(seed)
    background = (rng.random((height, width, 3)) * 80).astype(np.uint8)
    frames, masks = [], []
    for t in range(num_frames):
        frame, mask = background.copy(), np.zeros((height, width), bool)
        x = 16 + step * t
        mask[30:62, x:x + 32] = True
        frame[mask] = (220, 60, 60)
        frames.append(frame)
        masks.append(mask)
    return np.stack(frames), np.stack(masks)


@pytest.fixture
def square_video():
    return moving_square()


@pytest.fixture(scope="session")
def davis_root():
    root = os.environ.get("LITDEMO_DAVIS_ROOT")
    if not root or not Path(root).is_dir():
        pytest.skip("LITDEMO_DAVIS_ROOT is not set to the DAVIS-2016 folder (CI sets it)")
    return Path(root)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on busy shared cores OpenMP's spin-waiting
    made 2 threads ~50x slower than 1 here (24 s vs 0.4 s for 8 corrections). Restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- the app's tests (handlers, workshop, reliability, tour) -------------------------------------

@pytest.fixture(scope="module")
def models():
    """Loaded predictors shared by a test module's app sessions."""
    from litdemo.app.state import ModelCache

    return ModelCache()


@pytest.fixture
def app(tmp_path):
    """One tab's session, closed (its temp folder removed) after the test."""
    from litdemo.app.state import AppSession

    session = AppSession(tmp_path / "root")
    yield session
    session.close()


def centre(mask):
    """The object's centre in the picture the app shows (small videos are shown enlarged)."""
    from litdemo.app import render

    ys, xs = np.nonzero(mask)
    s = render.display_scale(*mask.shape)
    return (xs.mean() + 0.5) * s - 0.5, (ys.mean() + 0.5) * s - 0.5


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a test's own server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(cfg):
    """The app of `cfg` served on 127.0.0.1 as `python app.py` queues and launches it; yields
    (demo, url) and closes the server afterwards."""
    from litdemo.app import build_demo, launch_options

    demo = build_demo(cfg)
    port = free_port()
    demo.queue(default_concurrency_limit=cfg.concurrency_limit).launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options(cfg))
    try:
        yield demo, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


# --- scheduling ------------------------------------------------------------------------------------------------

# Test files by their serial time on the 2-core CI machine, heaviest first (seconds, 2026-12-02). The two xdist
# workers take whole files in this order (--dist loadfile --no-loadscope-reorder), so the long ones start first
# and the short ones fill in at the end instead of one worker finishing a long file alone. Files not named here
# follow in their usual order; a new heavy file belongs in this list.
HEAVIEST_FIRST = (
    "test_notebooks.py",       # 244
    "test_benchmark.py",       # 207
    "test_micro.py",           # 194 (~165 since its tour-263 test joined test_app_tour.py)
    "test_session.py",         # 96
    "test_zerogpu.py",         # 94
    "test_device_check.py",    # 76
    "test_app_browser.py",     # 72
    "test_paper_protocol.py",  # 70
    "test_reliability.py",     # 48
    "test_app_tour.py",        # 42
    "test_clip_micro.py",      # 37
    "test_bench_micro.py",     # 36
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # stable: a file's own order is kept
