"""The videos offered without an upload: the built-in synthetic one (with ground truth) and assets/.

The synthetic video is rendered on demand (no file, no download); its ground truth is what
makes the "simulate" comparison possible. Files in assets/ are plain videos without ground truth.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..datasets.base import VideoSample
from ..datasets.synthetic import make_synthetic_video
from ..video_io import VIDEO_SUFFIXES, Video, load_video
from .config import AppConfig

SYNTHETIC = "synthetic blobs (with ground truth)"
ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"  # the repository's assets/ (absent in a wheel)


def sample_names(assets_dir: Optional[Path] = ASSETS_DIR) -> list[str]:
    names = [SYNTHETIC]
    if assets_dir is not None and assets_dir.is_dir():
        names += sorted(p.name for p in assets_dir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    return names


def load_sample(name: str, cfg: AppConfig, assets_dir: Optional[Path] = ASSETS_DIR) -> tuple[Video, Optional[VideoSample]]:
    """The sample `name` as a Video, plus its VideoSample when it has ground truth."""
    if name == SYNTHETIC:
        sample = make_synthetic_video(num_frames=cfg.sample_frames, height=cfg.sample_height,
                                      width=cfg.sample_width, num_objects=1, seed=0)
        return Video(frames=sample.frames, fps=sample.fps, name="synthetic"), sample
    if name not in sample_names(assets_dir):  # the name comes from the browser: only listed files are opened
        raise ValueError(f"Unknown sample {name!r}; pick one of: {', '.join(sample_names(assets_dir))}.")
    video = load_video(assets_dir / name, max_frames=cfg.max_frames, max_side=cfg.max_side, truncate=True)
    return video, None
