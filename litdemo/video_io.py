"""Opening a video: a file (mp4/webm/mov/...), a folder of JPEG/PNG frames, or frames in memory.

Everything becomes a `Video` holding a (T, H, W, 3) uint8 RGB array. Limits keep a laptop
safe: long videos must be cut or subsampled on purpose, large frames are scaled down.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DEFAULT_MAX_FRAMES = 600
DEFAULT_MAX_SIDE = 1280


class VideoError(ValueError):
    """The video cannot be opened as given; the message says what to do."""


class HasFrames:
    """Sizes read off a `frames` array of shape (T, H, W, 3), for every class that holds one."""

    frames: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


@dataclass
class Video(HasFrames):
    frames: np.ndarray          # (T, H, W, 3) uint8 RGB
    fps: float = 24.0
    name: str = "video"
    notes: list[str] = field(default_factory=list)  # what was changed on the way in (resized, subsampled)


def load_video(source: Union[str, Path, np.ndarray, Sequence[np.ndarray]], *, max_frames: int = DEFAULT_MAX_FRAMES,
               max_side: int = DEFAULT_MAX_SIDE, stride: int = 1, truncate: bool = False,
               fps: Optional[float] = None, name: Optional[str] = None) -> Video:
    """Open `source` as a Video.

    stride: keep every stride-th frame (subsampling a long video on request).
    max_frames: more frames than this (after stride) raise VideoError, unless truncate=True.
    max_side: frames whose longer side exceeds this are scaled down (aspect kept).
    """
    if stride < 1:
        raise VideoError(f"stride must be >= 1 (got {stride}).")
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            frames, rate = _read_folder(path, stride), fps or 24.0
        elif path.is_file():
            if path.suffix.lower() not in VIDEO_SUFFIXES:
                raise VideoError(f"{path.name}: unsupported file type {path.suffix!r}; give a video file "
                                 f"({', '.join(VIDEO_SUFFIXES)}) or a folder of JPEG/PNG frames.")
            frames, rate = _read_file(path, stride, max_frames, truncate)
            rate = fps or rate
        else:
            raise VideoError(f"{path} does not exist; give a video file, a folder of frames or an array.")
        name = name or path.stem
    else:
        frames, rate = _from_arrays(source)[::stride], fps or 24.0
        name = name or "frames"
    video = Video(frames=frames, fps=float(rate), name=name)
    if video.num_frames > max_frames:
        if not truncate:
            raise VideoError(f"{name} has {video.num_frames} frames, more than max_frames={max_frames}. "
                             f"Subsample it (stride={int(np.ceil(video.num_frames / max_frames))}), cut it "
                             f"(truncate=True keeps the first {max_frames}), or raise max_frames.")
        video.frames = video.frames[:max_frames]
        video.notes.append(f"cut to the first {max_frames} frames")
    if stride > 1:
        video.notes.append(f"kept every {stride}th frame")
        video.fps = video.fps / stride
    _limit_side(video, max_side)
    return video


def _from_arrays(source) -> np.ndarray:
    frames = np.asarray(source) if not isinstance(source, np.ndarray) else source
    if frames.ndim == 3:  # a single grey video (T, H, W)
        frames = np.repeat(frames[..., None], 3, axis=-1)
    if frames.ndim != 4 or frames.shape[-1] not in (3, 4):
        raise VideoError(f"frames must have shape (T, H, W, 3), got {frames.shape}.")
    if frames.shape[0] == 0:
        raise VideoError("the frame array is empty (0 frames).")
    if frames.dtype != np.uint8:
        if np.issubdtype(frames.dtype, np.floating) and frames.max() <= 1.0:
            frames = frames * 255.0
        frames = np.clip(frames, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(frames[..., :3])


def _read_folder(folder: Path, stride: int) -> np.ndarray:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[::stride]
    if not files:
        raise VideoError(f"{folder} contains no JPEG/PNG frames; put the frames there as 00000.jpg, 00001.jpg, ...")
    frames = []
    for f in files:
        try:
            frames.append(np.asarray(Image.open(f).convert("RGB")))
        except (UnidentifiedImageError, OSError) as err:
            raise VideoError(f"{f} is not a readable image ({err}); remove or replace it.") from err
        if frames[-1].shape != frames[0].shape:
            raise VideoError(f"{f} is {frames[-1].shape[1]}x{frames[-1].shape[0]} but the first frame is "
                             f"{frames[0].shape[1]}x{frames[0].shape[0]}; all frames must have one size.")
    return np.stack(frames)


def _read_file(path: Path, stride: int, max_frames: int, truncate: bool) -> tuple[np.ndarray, float]:
    import imageio.v2 as imageio

    try:
        reader = imageio.get_reader(str(path), format="ffmpeg")
    except Exception as err:
        raise VideoError(f"{path.name} could not be opened as a video ({type(err).__name__}); "
                         f"is it a valid mp4/webm/mov file?") from err
    frames = []
    try:
        rate = float(reader.get_meta_data().get("fps") or 24.0)
        for i, frame in enumerate(reader):
            if i % stride:
                continue
            frames.append(np.asarray(frame)[..., :3])
            if len(frames) > max_frames and truncate:
                break
            if len(frames) > 4 * max_frames:  # do not decode a whole feature film before saying no
                break
    except Exception as err:
        raise VideoError(f"{path.name}: decoding failed after {len(frames)} frames ({type(err).__name__}); "
                         f"the file may be damaged.") from err
    finally:
        reader.close()
    if not frames:
        raise VideoError(f"{path.name} has no frames.")
    return np.stack(frames), rate


def _limit_side(video: Video, max_side: int) -> None:
    h, w = video.height, video.width
    if max(h, w) <= max_side:
        return
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    video.frames = np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in video.frames])
    video.notes.append(f"scaled from {w}x{h} to {size[0]}x{size[1]}")
