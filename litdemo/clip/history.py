"""Every prediction and correction of a CLIP LIT session, as plain data that round-trips JSON.

The same dataclasses are what `ClipLitSession.predict` / `.correct` return, so what the app
shows, what the benchmark counts and what a saved history holds are one thing.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Union

from ..files import write_text_atomically
from .training import TrainingCurve

FORMAT_VERSION = 1


@dataclass
class ClipPrediction:
    image_id: str
    predicted: str                       # top-1 class name
    top_k: list[tuple[str, float]]       # [(class name, probability), ...] best first
    mode: str                            # "zero-shot" | "lit-lora" | "lit-ft"
    seconds: float = 0.0                 # wall time of the prediction
    timestamp: float = field(default_factory=time.time)
    kind: str = "prediction"

    @property
    def confidence(self) -> float:
        return self.top_k[0][1]


@dataclass
class ClipCorrection:
    image_id: str
    predicted: str                       # what the model had said
    true_label: str                      # what the user says it is
    mode: str
    true_prob_before: float = 0.0        # P(true class) on this image before the update
    true_prob_after: float = 0.0         # ... and after it (equal for the zero-shot baseline)
    curve: Optional[TrainingCurve] = None  # None when nothing trains (zero-shot)
    seconds: float = 0.0                 # wall time of the whole correction (training included)
    timestamp: float = field(default_factory=time.time)
    kind: str = "correction"

    @property
    def was_wrong(self) -> bool:
        return self.predicted != self.true_label


Event = Union[ClipPrediction, ClipCorrection]


def _event_from_dict(data: dict) -> Event:
    data = dict(data)
    kind = data.get("kind")
    if kind == "prediction":
        data["top_k"] = [(str(n), float(p)) for n, p in data["top_k"]]
        return ClipPrediction(**data)
    if kind == "correction":
        if data.get("curve") is not None:
            data["curve"] = TrainingCurve.from_dict(data["curve"])
        return ClipCorrection(**data)
    raise ValueError(f"history event kind {kind!r} is neither 'prediction' nor 'correction'; the file is damaged.")


@dataclass
class ClipHistory:
    model: str = ""                                   # model label, says "untrained" when it is
    mode: str = ""
    class_names: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)        # ClipLitConfig.to_dict()
    events: list[Event] = field(default_factory=list)

    def add(self, event: Event) -> Event:
        self.events.append(event)
        return event

    @property
    def predictions(self) -> list[ClipPrediction]:
        return [e for e in self.events if isinstance(e, ClipPrediction)]

    @property
    def corrections(self) -> list[ClipCorrection]:
        return [e for e in self.events if isinstance(e, ClipCorrection)]

    def cumulative_corrections(self) -> list[int]:
        """Entry i: corrections made up to and including the (i+1)-th image shown."""
        counts: list[int] = []
        for e in self.events:
            if isinstance(e, ClipPrediction):
                counts.append(counts[-1] if counts else 0)
            elif counts:   # a correction belongs to the latest image shown
                counts[-1] += 1
        return counts

    def to_dict(self) -> dict:
        return {"format_version": FORMAT_VERSION, "model": self.model, "mode": self.mode,
                "class_names": list(self.class_names), "config": dict(self.config),
                "events": [asdict(e) for e in self.events]}

    @classmethod
    def from_dict(cls, data: dict) -> "ClipHistory":
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"history format_version {data.get('format_version')!r} is not {FORMAT_VERSION}; "
                             "it was written by another litdemo version.")
        return cls(model=data["model"], mode=data["mode"], class_names=list(data["class_names"]),
                   config=dict(data["config"]), events=[_event_from_dict(e) for e in data["events"]])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "ClipHistory":
        return cls.from_dict(json.loads(text))

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write JSON through a temporary file renamed into place (never half a file)."""
        return write_text_atomically(path, self.to_json())

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "ClipHistory":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"history file {str(path)!r} does not exist; save one with session.history.save().")
        return cls.from_json(path.read_text())
