"""What one browser tab owns (`AppSession`), and the model cache all tabs share (`ModelCache`).

A tab's video, clicks, LIT session, adapters and temp folder live in its `AppSession`, held
by a `gr.State`; Gradio calls `AppSession.close` when the tab is closed or the state expires,
and that removes the temp folder. Models are read-only during a session (LIT trains copies
of the decoder, never the shared one), so one loaded predictor can serve every tab.

Sessions pickle. On a ZeroGPU Space every model call runs in a forked worker process that gets
the session pickled and hands it back the same way (see gpu.py), so a session names its model
(`shared_model`) instead of carrying a copy of the weights, and its lock travels as a new one.
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional

import torch

from ..datasets.base import VideoSample
from ..models import load_sam2, pick_device
from ..predictor import LitVideoPredictor
from ..session import LitSession
from ..video_io import Video
from .render import FigureMemo

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

    def __reduce__(self):
        return SessionLock, ()  # pickled (ZeroGPU's worker): a new, unlocked lock on the other side


# Every model a ModelCache loaded, by key, in this process. A pickled predictor is only its key
# (LitVideoPredictor.__reduce_ex__), so a session crosses to ZeroGPU's worker without its weights
# and finds the worker's own copy (the worker is forked from this process, so it has them).
_SHARED: "weakref.WeakValueDictionary[tuple, LitVideoPredictor]" = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def shared_model(key: tuple) -> LitVideoPredictor:
    """This process's model for `key` = (name, image_size, device, pretrained); loaded here if absent
    (a session handed back from a worker that loaded a model this process never had)."""
    with _SHARED_LOCK:
        model = _SHARED.get(key)
        if model is None:
            model = _SHARED[key] = _load(key)
        return model


def _load(key: tuple) -> LitVideoPredictor:
    name, image_size, device, pretrained = key
    # A fixed seed makes the untrained tour the same model on every run (and in tests, and in
    # every process); fork_rng keeps the seed from leaking into anyone else's randomness.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        # raises WeightsUnavailableError with the next step when weights cannot be had
        model = load_sam2(name, device=device, image_size=image_size, pretrained=pretrained)
    model.shared_as = (shared_model, (key,))
    return model


# Model caches by token, so a pickled cache (a handler's argument on ZeroGPU) is the same cache
# in the forked worker and a new empty one in any other process.
_CACHES: "weakref.WeakValueDictionary[str, ModelCache]" = weakref.WeakValueDictionary()


def _cache_named(token: str, capacity: int) -> "ModelCache":
    cache = _CACHES.get(token)
    return cache if cache is not None else ModelCache(capacity, token=token)


class ModelCache:
    """Loaded predictors keyed by (name, image_size, device, pretrained); at most `capacity` kept."""

    def __init__(self, capacity: int = 2, token: Optional[str] = None):
        self.capacity = capacity
        self._models: "OrderedDict[tuple, LitVideoPredictor]" = OrderedDict()
        self._lock = threading.Lock()  # two tabs asking for the same model load it once
        self.token = token or uuid.uuid4().hex
        _CACHES[self.token] = self

    def __reduce__(self):
        return _cache_named, (self.token, self.capacity)

    def get(self, name: str, image_size: int, device: Optional[str], pretrained: bool) -> LitVideoPredictor:
        key = (name, int(image_size), str(pick_device(device)), bool(pretrained))
        with self._lock:
            if key not in self._models:
                self._models[key] = shared_model(key)
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
    figures: FigureMemo = field(default_factory=FigureMemo, repr=False, compare=False)  # the plots last drawn
    # One handler at a time touches this tab's session (a scrub during propagation waits a frame).
    lock: SessionLock = field(default_factory=SessionLock, repr=False, compare=False)

    def __deepcopy__(self, memo) -> "AppSession":
        """A fresh session on the same root. Gradio deep-copies a State's initial value when an API
        client (gradio_client: no page load) opens a session; the lock cannot be copied, and a fresh
        tab owns nothing yet, so a new empty session is the faithful copy."""
        if self.lit is not None or self.workdir is not None:
            raise TypeError("a tab's running session is never copied; it belongs to that tab")
        return AppSession(self.root)

    def adopt(self, other: "AppSession") -> None:
        """Take over `other`'s contents, keeping this tab's lock: how a session changed in ZeroGPU's
        worker (a pickled copy) comes back to the tab. Adopting itself changes nothing."""
        if other is self:
            return
        for f in fields(self):
            if f.name != "lock":
                setattr(self, f.name, getattr(other, f.name))

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
