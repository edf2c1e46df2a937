"""Opening a video: a file (mp4/webm/mov/...), a folder of JPEG/PNG frames, or frames in memory.

Everything becomes a `Video` holding a (T, H, W, 3) uint8 RGB array. Limits keep a laptop
safe: long videos must be cut or subsampled on purpose, large frames are scaled down as they
are read, and frames whose header claims more pixels than a frame should have are refused
before anything is decoded.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from .validation import is_whole

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DEFAULT_MAX_FRAMES = 600
DEFAULT_MAX_SIDE = 1280
# Largest frame decoded (width x height): 24 MP is a 6000x4000 photo, 72 MB as RGB. Frames are
# decoded one at a time, so this bounds the memory one file can take while it is scaled down.
DEFAULT_MAX_FRAME_PIXELS = 24_000_000


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
               fps: Optional[float] = None, name: Optional[str] = None,
               max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
               label: Optional[Callable[[Path], str]] = None) -> Video:
    """Open `source` as a Video.

    stride: keep every stride-th frame (subsampling a long video on request).
    max_frames: more frames than this (after stride) raise TooManyFramesError, unless truncate=True.
    max_side: frames whose longer side exceeds this are scaled down (aspect kept), one by one as
        they are read, so a file never sits in memory at full size.
    max_frame_pixels: frames larger than this (width x height, read from the file's header before
        decoding) are refused: a few KB of PNG can claim gigabytes of pixels.
    label: how a file is named in messages (default: its path); the app names the user's file.
    """
    if not is_whole(stride) or stride < 1:
        raise VideoError(f"stride must be a whole number >= 1 (got {stride!r}).")
    label = label or str
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = name or path.stem
        if path.is_dir():
            frames, rate, scaled = _read_folder(path, stride, max_frames, truncate, max_side, max_frame_pixels,
                                                label, name)
            rate = fps or rate
        elif path.is_file():
            if path.suffix.lower() not in VIDEO_SUFFIXES:
                raise VideoError(f"{Path(label(path)).name}: unsupported file type {path.suffix!r}; give a video file "
                                 f"({', '.join(VIDEO_SUFFIXES)}) or a folder of JPEG/PNG frames.")
            frames, rate, scaled = _read_file(path, stride, max_frames, truncate, max_side, max_frame_pixels, label)
            rate = fps or rate
        else:
            raise VideoError(f"{label(path)} does not exist; give a video file, a folder of frames or an array.")
    else:
        frames, rate, scaled = _from_arrays(source)[::stride], fps or 24.0, None
        name = name or "frames"
    video = Video(frames=frames, fps=float(rate), name=name)
    if video.num_frames > max_frames:
        if not truncate:
            raise TooManyFramesError(name, video.num_frames, max_frames)
        video.frames = video.frames[:max_frames]
        video.notes.append(f"cut to the first {max_frames} frames")
    if stride > 1:
        video.notes.append(f"kept every {stride}th frame")
        video.fps = video.fps / stride
    if scaled is not None:
        video.notes.append(_scaled_note(scaled, video.width, video.height))
    else:
        _limit_side(video, max_side)
    return video


class TooManyFramesError(VideoError):
    """More frames than max_frames; carries the numbers so an app can word its own advice."""

    def __init__(self, name: str, num_frames: int, max_frames: int):
        self.num_frames, self.max_frames = num_frames, max_frames
        self.stride_needed = int(np.ceil(num_frames / max_frames))
        super().__init__(f"{name} has {num_frames} frames, more than max_frames={max_frames}. "
                         f"Subsample it (stride={self.stride_needed}), cut it "
                         f"(truncate=True keeps the first {max_frames}), or raise max_frames.")


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


def _read_folder(folder: Path, stride: int, max_frames: int, truncate: bool, max_side: int, max_pixels: int,
                 label: Callable[[Path], str], name: str):
    """Frames of a folder, checked from their headers first, then decoded and scaled one at a time."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[::stride]
    if not files:
        raise VideoError(f"{label(folder)} contains no JPEG/PNG frames; put the frames there as 00000.jpg, "
                         f"00001.jpg, ...")
    if len(files) > max_frames:  # said before decoding anything
        if not truncate:
            raise TooManyFramesError(name, len(files), max_frames)
        files = files[:max_frames + 1]  # one more than kept, so load_video still notes the cut
    sizes = [_header_size(f, max_pixels, label) for f in files]
    for f, size in zip(files, sizes):
        if size != sizes[0]:
            raise VideoError(f"{label(f)} is {size[0]}x{size[1]} but the first frame is {sizes[0][0]}x{sizes[0][1]}; "
                             f"all frames must have one size.")
    target = _scaled_size(sizes[0], max_side)
    frames = np.empty((len(files), target[1], target[0], 3), np.uint8)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as img:
                img = img.convert("RGB")
                frames[i] = np.asarray(img if img.size == target else img.resize(target, Image.BILINEAR))
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise VideoError(f"{label(f)} is not a readable image ({type(err).__name__}); "
                             f"remove or replace it.") from err
    return frames, 24.0, (sizes[0] if target != sizes[0] else None)


def _header_size(path: Path, max_pixels: int, label: Callable[[Path], str]) -> tuple[int, int]:
    """(width, height) from the image's header, refused above max_pixels; nothing is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we apply our own, lower limit
            with Image.open(path) as img:
                size = img.size
    except Image.DecompressionBombError:
        size = _size_past_bomb_check(path)
        if size is None:
            raise VideoError(f"{label(path)} claims more pixels than any video frame should have; scale the "
                             f"frames down (e.g. to 1280 px) and try again.") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise VideoError(f"{label(path)} is not a readable image ({type(err).__name__}); "
                         f"remove or replace it.") from None
    if size[0] * size[1] > max_pixels:
        raise VideoError(f"{label(path)} is {size[0]}x{size[1]} pixels ({size[0] * size[1] / 1e6:.0f} MP), above the "
                         f"{max_pixels / 1e6:.0f} MP a frame may have here; scale the frames down (e.g. to "
                         f"1280 px) and try again.")
    return size


def _size_past_bomb_check(path: Path) -> Optional[tuple[int, int]]:
    """The header size of a PNG/JPEG so large that `Image.open` refuses to open it at all."""
    from PIL import JpegImagePlugin, PngImagePlugin

    opener = {".png": PngImagePlugin.PngImageFile, ".jpg": JpegImagePlugin.JpegImageFile,
              ".jpeg": JpegImagePlugin.JpegImageFile}.get(path.suffix.lower())
    try:
        with opener(str(path)) as img:  # the format's own reader: parses the header, no size check
            return img.size
    except Exception:  # noqa: BLE001 - any failure: the caller words a message without the size
        return None


def _read_file(path: Path, stride: int, max_frames: int, truncate: bool, max_side: int, max_pixels: int,
               label: Callable[[Path], str]):
    import imageio.v2 as imageio

    shown = Path(label(path)).name
    try:
        reader = imageio.get_reader(str(path), format="ffmpeg")
    except Exception as err:
        raise VideoError(f"{shown} could not be opened as a video ({type(err).__name__}); "
                         f"is it a valid mp4/webm/mov file?") from err
    frames, size, target = [], None, None
    try:
        rate = float(reader.get_meta_data().get("fps") or 24.0)
        for i, frame in enumerate(reader):
            if i % stride:
                continue
            frame = np.asarray(frame)[..., :3]
            if size is None:
                size = (frame.shape[1], frame.shape[0])
                if size[0] * size[1] > max_pixels:
                    raise VideoError(f"{shown} is {size[0]}x{size[1]} pixels, above the {max_pixels / 1e6:.0f} MP a "
                                     f"frame may have here; scale it down (e.g. ffmpeg -i in.mp4 -vf scale=1280:-2 "
                                     f"out.mp4).")
                target = _scaled_size(size, max_side)
            if target != size:  # scaled as it is read: the video never sits in memory at full size
                frame = np.asarray(Image.fromarray(frame).resize(target, Image.BILINEAR))
            frames.append(frame)
            if len(frames) > max_frames and truncate:
                break
            if len(frames) > 4 * max_frames:  # do not decode a whole feature film before saying no
                break
    except VideoError:
        raise
    except Exception as err:
        raise VideoError(f"{shown}: decoding failed after {len(frames)} frames ({type(err).__name__}); "
                         f"the file may be damaged.") from err
    finally:
        reader.close()
    if not frames:
        raise VideoError(f"{shown} has no frames.")
    return np.stack(frames), rate, (size if target != size else None)


def _scaled_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(width, height) with the longer side at most max_side, aspect kept (as `_limit_side`)."""
    w, h = size
    if max(w, h) <= max_side:
        return size
    scale = max_side / max(h, w)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _scaled_note(size: tuple[int, int], width: int, height: int) -> str:
    return f"scaled from {size[0]}x{size[1]} to {width}x{height}"


def _limit_side(video: Video, max_side: int) -> None:
    h, w = video.height, video.width
    size = _scaled_size((w, h), max_side)
    if size == (w, h):
        return
    video.frames = np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in video.frames])
    video.notes.append(_scaled_note((w, h), size[0], size[1]))
