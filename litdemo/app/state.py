"""What one browser tab owns (`AppSession`), and the model cache all tabs share (`ModelCache`).

A tab's video, clicks, LIT session, adapters and temp folder live in its `AppSession`, held
by a `gr.State`; Gradio calls `AppSession.close` when the tab is closed or the state expires,
and that removes the temp folder. Models are read-only during a session (LIT trains copies
of the decoder, never the shared one), so one loaded predictor can serve every tab.
"""
from __future__ import annotations

import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from ..datasets.base import VideoSample
from ..models import load_sam2, pick_device
from ..predictor import LitVideoPredictor
from ..session import LitSession
from ..video_io import Video

TOOLS = ("positive", "negative", "box")


class SessionLock:
    """A re-entrant lock that survives `copy.deepcopy` as a new, unlocked lock.

    Gradio deep-copies a `gr.State`'s default value whenever a tab has no value: after its
    session expired, or for a client that skipped the page's load event. A bare RLock cannot be
    copied ("cannot pickle '_thread.RLock'"), which left such a tab failing on every event.
    """

    def __init__(self):
        self._lock = threading.RLock()

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc):
        return self._lock.__exit__(*exc)

    def __deepcopy__(self, memo) -> "SessionLock":
        return SessionLock()  # a copy of a session never shares its lock


class ModelCache:
    """Loaded predictors keyed by (name, image_size, device, pretrained); at most `capacity` kept."""

    def __init__(self, capacity: int = 2):
        self.capacity = capacity
        self._models: "OrderedDict[tuple, LitVideoPredictor]" = OrderedDict()
        self._lock = threading.Lock()  # two tabs asking for the same model load it once

    def get(self, name: str, image_size: int, device: Optional[str], pretrained: bool) -> LitVideoPredictor:
        key = (name, int(image_size), str(pick_device(device)), bool(pretrained))
        with self._lock:
            if key not in self._models:
                # A fixed seed makes the untrained tour the same model on every run (and in tests);
                # fork_rng keeps the seed from leaking into anyone else's randomness.
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)
                    # raises WeightsUnavailableError with the next step when weights cannot be had
                    self._models[key] = load_sam2(name, device=key[2], image_size=key[1], pretrained=key[3])
                while len(self._models) > self.capacity:
                    self._models.popitem(last=False)  # the oldest model goes; running sessions keep a reference
            self._models.move_to_end(key)
            return self._models[key]


@dataclass
class ModelChoice:
    name: str = "tiny"           # key of litdemo.MODELS
    device: str = "cpu"          # "cpu", "cuda" or "mps"
    mode: str = "lit-lora"       # LitConfig.mode
    untrained: bool = False      # random weights (offline tour); said wherever results show
    image_size: Optional[int] = None  # px; None: AppConfig.image_size (a shipped model always runs at its own)
    adapters: int = 1            # LitConfig.max_adapters: 3 = multi-LoRA, three suggestions to pick from


@dataclass
class AppSession:
    root: Path                                   # the app's temp root; this tab's folder goes inside
    workdir: Optional[Path] = None               # created on first use, removed by close()
    video: Optional[Video] = None
    sample: Optional[VideoSample] = None         # set when the video has ground truth (simulate works)
    choice: ModelChoice = field(default_factory=ModelChoice)
    lit: Optional[LitSession] = None             # the core session over `video`
    frame: int = 0                               # frame shown
    obj_id: int = 1                              # object the next click goes to
    objects: list[int] = field(default_factory=lambda: [1])  # ids offered in the object picker
    tool: str = "positive"                       # one of TOOLS
    box_corner: Optional[tuple[float, float]] = None  # first corner while drawing a box
    simulation: Optional[dict] = None            # last simulated-user comparison, for the plots
    exports: int = 0                             # counter for generated export names
    # One handler at a time touches this tab's session (a scrub during propagation waits a frame).
    lock: SessionLock = field(default_factory=SessionLock, repr=False, compare=False)

    def __deepcopy__(self, memo) -> "AppSession":
        """A fresh session on the same root. Gradio deep-copies a State's initial value when an API
        client (gradio_client: no page load) opens a session; the lock cannot be copied, and a fresh
        tab owns nothing yet, so a new empty session is the faithful copy."""
        if self.lit is not None or self.workdir is not None:
            raise TypeError("a tab's running session is never copied; it belongs to that tab")
        return AppSession(self.root)

    def folder(self) -> Path:
        """This tab's private temp folder (created on first use)."""
        if self.workdir is None or not self.workdir.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            self.workdir = Path(tempfile.mkdtemp(prefix="tab-", dir=self.root))
        return self.workdir

    def close(self) -> None:
        """Free the tab's memory and files; safe to call twice."""
        self.lit = None
        self.video = None
        self.sample = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    @property
    def ready(self) -> bool:
        return self.lit is not None

    @property
    def untrained(self) -> bool:
        return self.lit is not None and self.lit.untrained


def close_session(app: Optional[AppSession]) -> None:
    """gr.State's delete callback: called with the tab's value when its session ends."""
    if app is not None:
        app.close()
