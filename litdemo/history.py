"""The session's history: every prompt, correction and accepted suggestion, as events.

A history is plain data: it exports to JSON and loads back unchanged, and it holds the masks
(run-length encoded) so a saved session can be replayed on a fresh one.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .files import write_text_atomically
from .validation import is_whole

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


def check_rle(rle: Any, shape: Optional[tuple[int, int]] = None) -> tuple[int, int]:
    """Raise ValueError unless `rle` is a well-formed mask RLE (of `shape` = (H, W) when given).

    Looks only at the numbers, never decodes: a few bytes of RLE can claim a mask of gigabytes,
    so the size is checked against the video before anything is allocated.
    """
    if not isinstance(rle, dict) or not isinstance(rle.get("size"), list) or not isinstance(rle.get("counts"), list):
        raise ValueError("its mask is not an RLE {'size': [H, W], 'counts': [...]}")
    size = rle["size"]
    if len(size) != 2 or not all(is_whole(v) and v > 0 for v in size):
        raise ValueError(f"its mask size {size!r} is not two positive whole numbers")
    h, w = size
    if shape is not None and (h, w) != tuple(shape):
        raise ValueError(f"its mask is {w}x{h} pixels but the video's frames are {shape[1]}x{shape[0]}")
    counts = rle["counts"]
    if len(counts) > h * w + 1 or not all(is_whole(c) and c >= 0 for c in counts):
        raise ValueError("its mask RLE counts are not non-negative whole numbers (the file is damaged)")
    total = sum(counts)
    if total != h * w:
        raise ValueError(f"its mask RLE covers {total} pixels, not {w}x{h}={h * w} (the file is damaged)")
    return h, w


def decode_mask(rle: dict, shape: Optional[tuple[int, int]] = None) -> np.ndarray:
    """The (H, W) bool mask of an RLE made by `encode_mask`; checked first (see `check_rle`)."""
    try:
        h, w = check_rle(rle, shape)
    except ValueError as err:
        raise ValueError(f"Cannot decode a mask: {err}.") from None
    counts = np.asarray(rle["counts"], dtype=np.int64)
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

    def mask_array(self, shape: Optional[tuple[int, int]] = None) -> Optional[np.ndarray]:
        """The decoded mask (None if none was recorded); `shape` (H, W) is checked before decoding."""
        return None if self.mask is None else decode_mask(self.mask, shape)


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
    def from_dict(cls, data: Any) -> "History":
        """A History from the dict `to_dict` wrote; ValueError saying what is wrong otherwise."""
        if not isinstance(data, dict) or data.get("format") != "litdemo-history":
            raise ValueError("This JSON is not a litdemo history (missing format='litdemo-history'); give the "
                             "history.json of a litdemo export.")
        version = data.get("version", 0)
        if not is_whole(version):
            raise ValueError(f"The history's version {version!r} is not a whole number; the file is damaged.")
        if version > FORMAT_VERSION:
            raise ValueError(f"History version {version} is newer than this litdemo understands "
                             f"({FORMAT_VERSION}); upgrade litdemo.")
        parts = {k: data.get(k, {}) for k in ("video", "model", "config")}
        events = data.get("events", [])
        if not all(isinstance(v, dict) for v in parts.values()) or not isinstance(events, list):
            raise ValueError("The history's video/model/config must be objects and its events a list; "
                             "the file is damaged.")
        return cls(**parts, events=[_event_from(i, e) for i, e in enumerate(events)])

    def check_fits(self, num_frames: int, height: int, width: int) -> None:
        """Raise ValueError unless every event fits a video of this size: frames in range, integer
        object ids, finite clicks inside the frame, masks of the frame's size. Decodes nothing,
        so a hostile file costs no memory; run it before changing any session."""
        for i, e in enumerate(self.events):
            where = f"event {i + 1} ({e.kind} on frame {e.frame_idx!r}, object {e.obj_id!r})"
            try:
                _check_event(e, num_frames, height, width)
            except ValueError as err:
                raise ValueError(f"The history cannot be replayed: {where}: {err}; the file is damaged or "
                                 f"belongs to another video.") from None

    def save(self, path: Union[str, Path]) -> Path:
        """Write JSON through a temporary file renamed into place (never half a file)."""
        return write_text_atomically(path, json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: Union[str, Path]) -> "History":
        path = Path(path)
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"Cannot read history {path.name}: it is not a JSON file ({type(err).__name__}); "
                             f"give the history.json of a litdemo export.") from None
        return cls.from_dict(data)


_EVENT_FIELDS = {f.name for f in fields(Event)}


def _event_from(i: int, data: Any) -> Event:
    if not isinstance(data, dict):
        raise ValueError(f"Event {i + 1} of the history is not an object; the file is damaged.")
    unknown = sorted(set(data) - _EVENT_FIELDS)
    missing = sorted({"kind", "frame_idx", "obj_id", "source"} - set(data))
    if unknown or missing:
        raise ValueError(f"Event {i + 1} of the history has {'unknown fields ' + str(unknown) if unknown else ''}"
                         f"{' and ' if unknown and missing else ''}{'no ' + str(missing) if missing else ''}; "
                         f"the file is damaged or from another program.")
    return Event(**data)


def _check_event(e: Event, num_frames: int, height: int, width: int) -> None:
    if not is_whole(e.frame_idx) or not 0 <= e.frame_idx < num_frames:
        raise ValueError(f"the frame is not a whole number in 0..{num_frames - 1}")
    if not is_whole(e.obj_id):
        raise ValueError("the object id is not a whole number")
    if e.mask is None:
        raise ValueError("it has no mask recorded")
    check_rle(e.mask, (height, width))
    if not isinstance(e.clicks, list):
        raise ValueError("its clicks are not a list")
    for click in e.clicks:
        if (not isinstance(click, list) or len(click) != 3 or click[2] not in (0, 1)
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in click[:2])
                or not (0 <= click[0] < width and 0 <= click[1] < height)):
            raise ValueError(f"click {click!r} is not [x, y, 0 or 1] inside the {width}x{height} frame")
