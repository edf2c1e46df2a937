"""What a frame and a correction cost at a given image size on this device: measured, not guessed.

The model panel offers the image sizes a model can run at and says what each costs *here*:
the first frames a session tracks at a size are timed (the very first one is left out: it pays
for warming up), and so are the corrections' training updates. Until a size has been used the
panel says it is not measured yet rather than quote a number from another machine.
"""
from __future__ import annotations

import statistics
import threading
from typing import Optional

from ..models import model_spec

SAM2_SIZE = 1024
CPU_SIZE = 512       # offered (and the default) for SAM2.1 weights on a CPU: a quarter of the pixels
QUICK_SIZE = 256
FIRST_FRAMES = 9     # frames timed per size: the first is warm-up, the next 8 give the median
KEPT_CORRECTIONS = 10


def size_choices(name: str, device: str, configured: int) -> list[tuple[str, int]]:
    """(label, px) pairs for the image-size picker; a shipped model runs only at its own size."""
    spec = model_spec(name)
    if spec.shipped:
        return [(f"{spec.image_size} px (the size {spec.name} was trained at)", spec.image_size)]
    on_cpu = device == "cpu"
    choices = [(f"{SAM2_SIZE} px (SAM2's own)", SAM2_SIZE),
               (f"{CPU_SIZE} px" + (" (suggested on a CPU: a quarter of the pixels)" if on_cpu else ""), CPU_SIZE),
               (f"{QUICK_SIZE} px (quick, coarse masks)", QUICK_SIZE)]
    if configured not in (SAM2_SIZE, CPU_SIZE, QUICK_SIZE):
        choices.append((f"{configured} px (configured)", configured))
    return choices


def default_size(name: str, device: str, configured: int) -> int:
    """The size the picker starts on: a shipped model's own; 512 for SAM2.1 on a CPU unless another
    size than SAM2's default was configured; otherwise the configured size (1024 on a GPU)."""
    spec = model_spec(name)
    if spec.shipped:
        return spec.image_size
    if device == "cpu" and configured == SAM2_SIZE:
        return CPU_SIZE
    return configured


def model_image_size(name: str, requested: Optional[int], configured: int) -> int:
    """The size a model is loaded at: a shipped model's own, else what was picked (or configured)."""
    spec = model_spec(name)
    return spec.image_size if spec.shipped else int(requested or configured)


class CostBook:
    """Per (model, image size, device): seconds per tracked frame and per correction, as measured."""

    def __init__(self):
        self._frames: dict[tuple, list[float]] = {}
        self._corrections: dict[tuple, list[float]] = {}
        self._lock = threading.Lock()

    def wants_frames(self, key: tuple) -> bool:
        with self._lock:
            return len(self._frames.get(key, ())) < FIRST_FRAMES

    def add_frame(self, key: tuple, seconds: float) -> None:
        with self._lock:
            times = self._frames.setdefault(key, [])
            if len(times) < FIRST_FRAMES:
                times.append(float(seconds))

    def add_correction(self, key: tuple, seconds: float) -> None:
        with self._lock:
            times = self._corrections.setdefault(key, [])
            times.append(float(seconds))
            del times[:-KEPT_CORRECTIONS]

    def frame_seconds(self, key: tuple) -> Optional[float]:
        """Median seconds per tracked frame, once at least one frame after the warm-up was timed."""
        with self._lock:
            times = self._frames.get(key, [])[1:]
        return statistics.median(times) if times else None

    def correction_seconds(self, key: tuple) -> Optional[float]:
        with self._lock:
            times = list(self._corrections.get(key, []))
        return statistics.median(times) if times else None

    def describe(self, name: str, image_size: int, device: str) -> str:
        """One Markdown line for the model panel."""
        key = (name, int(image_size), str(device))
        frame = self.frame_seconds(key)
        where = f"{model_spec(name).display_name} at {image_size} px on {device}"
        if frame is None:
            return f"**Cost here:** {where}: not measured yet; propagate once and the first frames are timed."
        with self._lock:
            n = len(self._frames.get(key, [])) - 1
        text = f"**Cost here:** {where}: **{frame:.2f} s per tracked frame** (median of the first {n} frames timed)"
        correction = self.correction_seconds(key)
        if correction is not None:
            with self._lock:
                m = len(self._corrections.get(key, []))
            text += f", {correction:.1f} s of training per correction (median of the last {m})"
        return text + "."


COSTS = CostBook()  # shared by all tabs: the device and the model are the same for everyone
