"""The shared video record and the small readers every dataset loader is built on.

Every loader in `litdemo.datasets` returns one `VideoSample`: RGB frames plus per-object ground
truth on the frames that have it. The benchmark, the app and the notebooks only ever see this
record, so a new dataset needs nothing but a function that fills it.

Conventions (the same for all datasets):
- frames are `(T, H, W, 3)` uint8 RGB, frame index = position in the sorted frame list;
- object ids are positive ints (0 is background, as in DAVIS palette PNGs);
- `gt[obj_id]` holds a mask for every *annotated* frame, including frames where the object is
  absent (an empty mask there is ground truth too: "the object is not visible");
- bad data raises `DatasetError`, whose message names the file and says what to do.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..video_io import HasFrames


class DatasetError(ValueError):
    """Bad or missing dataset files; the message names the file and the fix."""


@dataclass
class VideoSample(HasFrames):
    """One video with per-object ground truth.

    `gt` maps obj_id -> {frame_idx: (H, W) bool mask}; only annotated frames are present, so
    sparse annotations (SA-V at 6 fps over 24 fps frames, LVOS, VOST) need no special casing.
    """

    name: str  # sequence / video id, used as the key in results files
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    gt: dict[int, dict[int, np.ndarray]]  # obj_id -> {frame_idx: (H, W) bool}
    fps: float = 24.0  # playback rate of `frames` (DAVIS and SA-V frames are 24 fps)
    # frame_idx -> (H, W) bool "void" pixels (label 255 in VOST, LVOS and DAVIS 2017 palette PNGs):
    # ambiguous regions that the paper protocol leaves out of every IoU. They are background in `gt`.
    void: dict[int, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        f = self.frames
        if not (isinstance(f, np.ndarray) and f.ndim == 4 and f.shape[-1] == 3 and f.dtype == np.uint8):
            shape = getattr(f, "shape", None)
            dtype = getattr(f, "dtype", None)
            raise DatasetError(
                f"{self.name}: frames must be a (T, H, W, 3) uint8 RGB array, got shape {shape} "
                f"dtype {dtype}; convert with np.asarray(frames, dtype=np.uint8)"
            )
        if self.fps <= 0:
            raise DatasetError(f"{self.name}: fps must be > 0, got {self.fps}")
        num_frames, height, width = f.shape[:3]
        for obj_id, per_frame in self.gt.items():
            if int(obj_id) <= 0:
                raise DatasetError(f"{self.name}: object ids must be >= 1 (0 is background), got {obj_id}")
            for t, mask in per_frame.items():
                if not 0 <= t < num_frames:
                    raise DatasetError(
                        f"{self.name}: GT for object {obj_id} on frame {t}, but the video has "
                        f"{num_frames} frames (0..{num_frames - 1})"
                    )
                if mask.shape != (height, width) or mask.dtype != bool:
                    raise DatasetError(
                        f"{self.name}: GT mask of object {obj_id} on frame {t} is {mask.shape} "
                        f"{mask.dtype}; expected ({height}, {width}) bool like the frames"
                    )

        for t, mask in self.void.items():
            if not 0 <= t < num_frames or mask.shape != (height, width) or mask.dtype != bool:
                raise DatasetError(f"{self.name}: void mask on frame {t} must be a ({height}, {width}) bool mask "
                                   f"of a frame in 0..{num_frames - 1}, got {mask.shape} {mask.dtype}")

    def object_ids(self) -> list[int]:
        return sorted(self.gt)

    def annotated_frames(self, obj_id: int) -> list[int]:
        """Sorted frame indices that carry GT for `obj_id` (empty masks included)."""
        return sorted(self._masks_of(obj_id))

    def first_annotated_frame(self, obj_id: int) -> int:
        """First frame whose GT mask for `obj_id` is non-empty: where a session starts tracking it."""
        per_frame = self._masks_of(obj_id)
        for t in sorted(per_frame):
            if per_frame[t].any():
                return t
        raise DatasetError(
            f"{self.name}: object {obj_id} has an empty GT mask on every annotated frame; "
            "drop the object or check its annotation files"
        )

    def gt_mask(self, obj_id: int, frame_idx: int) -> np.ndarray | None:
        """(H, W) bool GT of `obj_id` on `frame_idx`, or None where that frame is not annotated."""
        return self._masks_of(obj_id).get(frame_idx)

    def _masks_of(self, obj_id: int) -> dict[int, np.ndarray]:
        if obj_id not in self.gt:
            raise KeyError(f"{self.name}: no object {obj_id}; objects are {self.object_ids()}")
        return self.gt[obj_id]


def davis_palette() -> np.ndarray:
    """(256, 3) uint8 colours of DAVIS / PASCAL VOC palette PNGs (index 1 = dark red, ...).

    Built by the VOC rule rather than stored: the bits of the index, read three at a time
    from the lowest, are spread over the R, G, B channels from the most significant bit down,
    so neighbouring ids get very different colours.
    """
    palette = np.zeros((256, 3), np.uint8)
    for index in range(256):
        rgb, bits = [0, 0, 0], index
        for shift in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((bits >> channel) & 1) << shift
            bits >>= 3
        palette[index] = rgb
    return palette


# ---------------------------------------------------------------------------------------------
# Readers: each turns a library error into a DatasetError that names the file.


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of one image file."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError) as e:
        raise DatasetError(f"cannot read frame {path}: {e}; re-extract or re-download this file") from e


def read_label_png(path: Path) -> tuple[np.ndarray, bool]:
    """(H, W) integer labels of one annotation PNG, and whether it is a palette (index) PNG.

    Palette PNGs (DAVIS 2017, MOSE, LVOS, VOST) store object ids as palette indices. Grey PNGs
    store either a binary mask (0/255 as in DAVIS 2016, or 0/1) or ids as grey values.
    """
    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode == "P":
                return np.asarray(im, dtype=np.uint8), True
            if mode in ("L", "1", "I", "I;16"):
                return np.asarray(im.convert("I") if mode != "L" else im).astype(np.int32), False
    except (OSError, UnidentifiedImageError, SyntaxError) as e:
        raise DatasetError(f"cannot read annotation {path}: {e}; re-extract or re-download this file") from e
    raise DatasetError(
        f"annotation {path} is a {mode} PNG; expected a palette (P) or grey (L) PNG with object "
        "ids as values. Convert colour masks to palette PNGs (e.g. with the DAVIS palette)."
    )


def binary_from_grey(labels: np.ndarray) -> bool:
    """True when a grey PNG is a binary mask (values within {0, 255} or {0, 1})."""
    values = np.unique(labels)
    return set(values.tolist()) <= {0, 255} or set(values.tolist()) <= {0, 1}


def trailing_number(path: Path) -> int | None:
    """Frame number at the end of a file stem ('00012' -> 12, 'frame00012' -> 12), else None."""
    m = re.search(r"(\d+)$", path.stem)
    return int(m.group(1)) if m else None


def sorted_files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    """Files of `folder` with these suffixes, in frame order ('9.jpg' before '10.jpg')."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in extensions]
    return sorted(files, key=lambda p: (trailing_number(p) is None, trailing_number(p) or 0, p.name))


def check_no_missing_frames(paths: list[Path], folder: Path) -> None:
    """Raise if numbered frame files skip a number.

    Datasets number frames with a fixed step (1 for DAVIS/SA-V JPEGs; some ship subsampled
    frames with a larger step), so a gap that breaks the most common step is a missing file.
    """
    numbers = [trailing_number(p) for p in paths]
    if len(paths) < 3 or any(n is None for n in numbers):
        return
    steps = np.diff(numbers)
    values, counts = np.unique(steps, return_counts=True)
    step = int(values[np.argmax(counts)])
    for prev, nxt, s in zip(paths[:-1], paths[1:], steps):
        if s != step:
            expected = trailing_number(prev) + step
            raise DatasetError(
                f"missing frame in {folder}: after {prev.name} comes {nxt.name}, expected frame "
                f"number {expected} (step {step}); re-extract the frames of this video"
            )


def scale_for(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    """(H', W') with the longer side capped at `max_side`, aspect ratio kept."""
    if max_side is None or max(height, width) <= max_side:
        return height, width
    if max_side < 8:
        raise DatasetError(f"max_side={max_side} is too small; use at least 8 pixels (or None)")
    s = max_side / max(height, width)
    return max(1, round(height * s)), max(1, round(width * s))


def resize_rgb(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average downscale (no aliasing); identity when the size already matches."""
    if frame.shape[:2] == size:
        return frame
    return cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a bool mask, so it stays binary."""
    if mask.shape == size:
        return mask
    out = cv2.resize(mask.astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    return out.astype(bool)


def read_frames(paths: list[Path], max_side: int | None
                ) -> tuple[list[np.ndarray], tuple[int, int], tuple[int, int]]:
    """Read frames of one video, checking they share one size, downscaled to `max_side`.

    Returns (frames, size after resizing, original size) - annotations are checked against the
    original size before they are resized the same way.
    """
    frames: list[np.ndarray] = []
    full = size = None
    for path in paths:
        rgb = read_rgb(path)
        if full is None:
            full = rgb.shape[:2]
            size = scale_for(*full, max_side)
        elif rgb.shape[:2] != full:
            raise DatasetError(
                f"frame {path} is {rgb.shape[1]}x{rgb.shape[0]} but {paths[0].name} is "
                f"{full[1]}x{full[0]}; all frames of a video must have one size"
            )
        frames.append(resize_rgb(rgb, size))
    return frames, size, full


def finish_sample(name: str, frames: list[np.ndarray], gt: dict[int, dict[int, np.ndarray]],
                  fps: float, source: Path | str, void: dict[int, np.ndarray] | None = None) -> VideoSample:
    """Stack frames, drop objects never visible (e.g. cut off by max_frames), build the record."""
    if not frames:
        raise DatasetError(f"no frames found for {name} in {source}")
    gt = {k: v for k, v in gt.items() if any(m.any() for m in v.values())}
    if not gt:
        raise DatasetError(
            f"{name}: every ground-truth mask in {source} is empty (within the loaded frames); "
            "check the annotation files, or raise max_frames if the objects appear later"
        )
    void = {t: m for t, m in (void or {}).items() if m.any()}
    return VideoSample(name=name, frames=np.stack(frames), gt=gt, fps=fps, void=void)
