"""The app's settings: limits that keep a CPU machine (a free HF Space) responsive.

Every field can be set from the environment as LITDEMO_APP_<FIELD> (e.g.
LITDEMO_APP_IMAGE_SIZE=256), so a Space or a test changes them without touching code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields

from ..models import MODELS
from ..validation import check_finite_fields
from .priority import check_nice

ENV_PREFIX = "LITDEMO_APP_"


@dataclass
class AppConfig:
    # SAM2's own input resolution; 256 makes the untrained tour and the tests fast on a CPU.
    image_size: int = 1024
    # Try the hub / local checkpoints first; False starts on the untrained model (offline tour).
    pretrained: bool = True
    # The model picked when the page opens: the smallest is the only one a CPU runs interactively.
    default_model: str = "tiny"
    # Upload limit: a minute of 480p H.264 is ~10-30 MB; bigger files rarely fit the frame limit.
    max_upload_mb: float = 50.0
    # Frames kept after subsampling: tracking costs ~0.5-1 s per frame on a CPU at 1024 px.
    max_frames: int = 200
    # Longer frame side after loading; DAVIS's 854 px keeps masks sharp and memory modest.
    max_side: int = 854
    # A zip of frames may hold at most this many images and this many MB once unpacked (zip bombs).
    max_zip_images: int = 2000
    max_unzipped_mb: float = 500.0
    # One model step at a time per worker: two CPU-bound steps at once only slow both down.
    concurrency_limit: int = 1
    # Corrections, Simulate and imports (the long jobs) in a queue of their own, this many at a
    # time; 0: they share the model steps' queue. A workshop on a 2-core CPU runs 1 here with one
    # torch thread per job (OMP_NUM_THREADS=1), so clicks and propagations never wait behind
    # training (docs/app.md, "A workshop under load").
    training_concurrency_limit: int = 0
    # Nice value added to the threads that run those long jobs (0..19; 0: they run on Gradio's threads at
    # normal priority). litdemo's choice for a workshop on a CPU Space: the kernel then gives the cores to
    # clicks and propagations first and training what is left (priority.py; docs/app.md). Linux only.
    training_nice: int = 0
    # Sessions idle this long are dropped (their temp folder with them); closing the tab also drops it.
    session_ttl_s: float = 2 * 3600.0
    # The built-in synthetic sample (has ground truth, so "simulate" works): small enough for a CPU.
    sample_frames: int = 24
    sample_height: int = 240
    sample_width: int = 320
    # Training steps for the first / later corrections (paper: 100 / 20); fewer make a CPU tour snappier.
    train_steps_first: int = 100
    train_steps_later: int = 20
    # Wall-clock cap on one correction's training in seconds (0: none, the paper's schedule). On a
    # CPU at 1024 px that schedule takes ~10 s per correction; a cap of 1-2 s keeps the page responsive.
    train_max_seconds: float = 0.0
    # Simulated user: a frame whose IoU with the ground truth reaches this is fine (the paper's tau).
    simulate_iou_threshold: float = 0.5

    def __post_init__(self) -> None:
        # NaN passes every `x <= 0` check below (and `inf` is no limit): refuse both first.
        check_finite_fields(self, [f.name for f in fields(self)])
        if self.image_size % 64 or self.image_size < 128:
            raise ValueError(f"image_size must be a multiple of 64 and >= 128 (got {self.image_size}); "
                             f"1024 is SAM2's own, 256 is fine for a quick offline tour.")
        if self.default_model not in MODELS:
            raise ValueError(f"default_model={self.default_model!r} is unknown; use one of {', '.join(MODELS)}.")
        for name in ("max_upload_mb", "max_frames", "max_side", "max_zip_images", "max_unzipped_mb",
                     "concurrency_limit", "session_ttl_s", "train_steps_first", "train_steps_later", "sample_frames", "sample_height", "sample_width"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0 (got {getattr(self, name)}).")
        if self.training_concurrency_limit < 0:
            raise ValueError(f"training_concurrency_limit must be >= 0, 0 meaning the model steps' queue "
                             f"(got {self.training_concurrency_limit}).")
        check_nice(self.training_nice, "training_nice")
        if self.train_max_seconds < 0:
            raise ValueError(f"train_max_seconds must be >= 0, 0 meaning no cap (got {self.train_max_seconds}).")
        if not 0.0 < self.simulate_iou_threshold <= 1.0:
            raise ValueError(f"simulate_iou_threshold must be in (0, 1] (got {self.simulate_iou_threshold}).")

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "AppConfig":
        """Defaults, then LITDEMO_APP_* variables, then keyword overrides."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            kind = type(getattr(cls, f.name, f.default)) if f.default is not None else str
            try:
                values[f.name] = _parse(raw, kind)
            except ValueError as err:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a valid {kind.__name__}.") from err
        values.update(overrides)
        try:
            return cls(**values)
        except ValueError as err:
            set_here = [ENV_PREFIX + name.upper() for name in values if name not in overrides]
            where = f" (from the environment: {', '.join(set_here)})" if set_here else ""
            raise ValueError(f"{err}{where}") from None


def _parse(raw: str, kind: type):
    if kind is bool:
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(raw)
    return kind(raw)
