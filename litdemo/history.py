"""The session's history: every prompt, correction and accepted suggestion, as events.

A history is plain data: it exports to JSON and loads back unchanged, and it holds the masks
(run-length encoded) so a saved session can be replayed on a fresh one.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .files import write_text_atomically

EVENT_KINDS = ("prompt", "correction", "accepted")
SOURCES = ("clicks", "box", "mask", "suggestion")
FORMAT_VERSION = 1


def encode_mask(mask: np.ndarray) -> dict:
    """Run-length encode a (H, W) bool mask in row-major order, counts starting with a 0-run."""
    flat = np.asarray(mask, dtype=bool).ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def decode_mask(rle: dict) -> np.ndarray:
    h, w = rle["size"]
    counts = np.asarray(rle["counts"], dtype=np.int64)
    if counts.sum() != h * w:
        raise ValueError(f"mask RLE covers {counts.sum()} pixels, expected {h}x{w}={h * w}; the history file is damaged.")
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape(h, w)


@dataclass
class Event:
    kind: str                   # "prompt" | "correction" | "accepted"
    frame_idx: int
    obj_id: int
    source: str                 # how the mask was given: "clicks" | "box" | "mask" | "suggestion"
    clicks: list = field(default_factory=list)   # [[x, y, 1 (positive) / 0 (negative)], ...]
    box: Optional[list] = None  # [x0, y0, x1, y1] for box prompts
    mask_fallback: bool = False  # clicks were not enough and a full mask was given
    mask: Optional[dict] = None  # RLE of the final mask on this frame (see encode_mask)
    iou_before: Optional[float] = None   # tracked mask vs the final mask (how wrong tracking was)
    suggestion_iou_before: Optional[float] = None  # adapter's suggestion vs final mask, before training
    suggestion_iou_after: Optional[float] = None   # ... after training on this correction
    train_curve: Optional[dict] = None   # TrainingCurve.to_dict()
    adapter_idx: Optional[int] = None    # which adapter learned from it
    train_seconds: float = 0.0
    wall_seconds: float = 0.0            # whole call: SAM2 + training
    timestamp: float = field(default_factory=time.time)

    def __post_init__(self):
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"event kind {self.kind!r} is not one of {EVENT_KINDS}")
        if self.source not in SOURCES:
            raise ValueError(f"event source {self.source!r} is not one of {SOURCES}")

    def mask_array(self) -> Optional[np.ndarray]:
        return None if self.mask is None else decode_mask(self.mask)


@dataclass
class History:
    video: dict = field(default_factory=dict)  # name, num_frames, height, width
    model: dict = field(default_factory=dict)  # name, image_size, untrained, label (micro: "not SAM2.1")
    config: dict = field(default_factory=dict)  # LitConfig.to_dict()
    events: list[Event] = field(default_factory=list)

    def add(self, event: Event) -> Event:
        self.events.append(event)
        return event

    def corrections(self, obj_id: Optional[int] = None) -> list[Event]:
        return [e for e in self.events if e.kind == "correction" and (obj_id is None or e.obj_id == obj_id)]

    def accepted(self, obj_id: Optional[int] = None) -> list[Event]:
        return [e for e in self.events if e.kind == "accepted" and (obj_id is None or e.obj_id == obj_id)]

    def to_dict(self) -> dict:
        return {"format": "litdemo-history", "version": FORMAT_VERSION, "video": self.video, "model": self.model,
                "config": self.config, "events": [asdict(e) for e in self.events]}

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        if data.get("format") != "litdemo-history":
            raise ValueError("This JSON is not a litdemo history (missing format='litdemo-history').")
        if data.get("version", 0) > FORMAT_VERSION:
            raise ValueError(f"History version {data['version']} is newer than this litdemo understands "
                             f"({FORMAT_VERSION}); upgrade litdemo.")
        return cls(video=data.get("video", {}), model=data.get("model", {}), config=data.get("config", {}),
                   events=[Event(**e) for e in data.get("events", [])])

    def save(self, path: Union[str, Path]) -> Path:
        """Write JSON through a temporary file renamed into place (never half a file)."""
        return write_text_atomically(path, json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: Union[str, Path]) -> "History":
        path = Path(path)
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"Cannot read history {path}: {err}") from err
        try:
            return cls.from_dict(data)
        except TypeError as err:
            raise ValueError(f"History {path} has an unexpected event layout: {err}") from err
