"""Each frame's image-encoder output, computed once per session and reused.

SAM2's video predictor keeps the backbone features of the most recent frame only
(`inference_state["cached_features"]`), so every re-propagation after a correction, every
suggestion on a frame whose captured decoder inputs were dropped and every recomputed capture
runs the image encoder again on an image that never changed. `FeatureCache` keeps them for
many frames inside a byte budget, least recently used out first.

What is kept per frame: the three backbone levels SAM2 reads (`backbone_fpn`, level 0 and 1
already projected by the decoder's conv_s0/conv_s1, as `SAM2Base.forward_image` leaves them),
in float32, exactly as computed, so masks with the cache equal masks without it bit for bit.
At 1024 px that is 16 MB a frame (8 + 4 + 4 MB), at 512 px 4 MB, the same for every SAM2.1
size (the neck always gives 256 channels). Not kept: the normalised image (rebuilt from the
uint8 frames in a few ms; SAM2's tracking never reads it) and the position encodings (they
depend only on the feature map's shape, so one copy serves every frame).

Why float32 and no half precision: the cached levels feed memory attention, the decoder and
the memory encoder, whose outputs feed every later frame, and the cache promises masks equal
to SAM2's own. A float16 copy halves the memory but does not keep that promise: re-propagating
5 frames after a correction (random tiny, 256 px) gave 14 different pixels (IoU 0.9999).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional

import torch


class FeatureCache:
    """Backbone features per frame index, least recently used evicted past `budget_mb`."""

    def __init__(self, budget_mb: float):
        if budget_mb < 0:
            raise ValueError(f"budget_mb must be >= 0 (0 turns the cache off), got {budget_mb}.")
        self.budget_bytes = int(budget_mb * 2**20)
        self._levels: OrderedDict[int, list[torch.Tensor]] = OrderedDict()
        self._pos_enc: Optional[list[torch.Tensor]] = None  # shared by all frames (shape-only)
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.budget_bytes > 0

    def get(self, frame_idx: int, device: torch.device) -> Optional[dict]:
        """A backbone output dict like `forward_image`'s, on `device`, or None (a miss)."""
        levels = self._levels.get(frame_idx)
        if levels is None:
            self.misses += 1
            return None
        self._levels.move_to_end(frame_idx)
        self.hits += 1
        levels = [t.to(device) for t in levels]  # no copy when stored on `device` already
        return {"vision_features": levels[-1], "backbone_fpn": levels,
                "vision_pos_enc": [t.to(device) for t in self._pos_enc]}

    def put(self, frame_idx: int, backbone_out: dict, storage: torch.device) -> None:
        """Keep one frame's backbone output (on `storage`), evicting the oldest past the budget."""
        if not self.enabled:
            return
        self.drop(frame_idx)
        levels = [t.to(storage) for t in backbone_out["backbone_fpn"]]
        size = sum(t.numel() * t.element_size() for t in levels)
        if size > self.budget_bytes:
            return  # one frame alone is over budget: keep nothing rather than thrash
        if self._pos_enc is None:
            self._pos_enc = [t.to(storage) for t in backbone_out["vision_pos_enc"]]
        self._levels[frame_idx] = levels
        self.nbytes += size
        while self.nbytes > self.budget_bytes:
            self.drop(next(iter(self._levels)))

    def drop(self, frame_idx: int) -> None:
        levels = self._levels.pop(frame_idx, None)
        if levels is not None:
            self.nbytes -= sum(t.numel() * t.element_size() for t in levels)

    def clear(self) -> None:
        self._levels.clear()
        self._pos_enc = None
        self.nbytes = 0

    def frames(self) -> list[int]:
        """Cached frame indices, least recently used first."""
        return list(self._levels)

    # A cache is not state: a pickled session (the app on ZeroGPU crosses to a GPU worker and back on
    # every call) travels without it and refills it where it lands. Masks do not depend on it (above);
    # what it saves is the encoder's time, while carrying it would cost 16 MB a frame at 1024 px, both
    # ways, on every click (benchmarks/bench_zerogpu_transfer.py).
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_levels=OrderedDict(), _pos_enc=None, nbytes=0)
        return state

    def __contains__(self, frame_idx: int) -> bool:
        return frame_idx in self._levels

    def __len__(self) -> int:
        return len(self._levels)
