"""The videos offered without an upload: the tour (with ground truth), the synthetic blobs, and assets/.

The tour's videos are rendered on demand by litdemo's procedural generator (no file, no download),
each chosen for one event that makes SAM2 alone go wrong again and again while LIT-LoRA, which
learns from the first corrections, needs fewer: on the `micro` model, **Simulate** shows the two
side by side. Their ground truth is what makes the simulated user possible. The videos come from
the generator's `tour` split (neither the micro model's training data nor the benchmark's
evaluation videos), named by what happens in them. Files in assets/ are plain videos without
ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..datasets.base import VideoSample
from ..datasets.procedural import make_procedural_video
from ..datasets.synthetic import make_synthetic_video
from ..video_io import VIDEO_SUFFIXES, Video, load_video
from .config import AppConfig

SYNTHETIC = "synthetic blobs (with ground truth)"
ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"  # the repository's assets/ (absent in a wheel)


@dataclass(frozen=True)
class TourSample:
    name: str          # what the dropdown shows: what happens in the video
    split: str         # the procedural generator's split ("tour": neither training nor evaluation data)
    index: int
    try_this: str      # one line for the intro: what to look for

    def render(self) -> VideoSample:
        return make_procedural_video(self.split, self.index)  # 32 frames of 128x128, micro's own size


# Picked with `python benchmarks/select_tour_samples.py --split tour --first F --count 60 --event E --min-on-screen 8`
# on the shipped micro checkpoint (sha256 52e00d1c...): per event, among the videos that show their event on at
# least 8 of their 32 frames (`tour_event_frames`: the look-alike within 3 px of the object, the occluder hiding
# more than a fifth of it), the one where LIT-LoRA saves the most corrections, ties broken by SAM2 alone's count.
# Appearance and look-alike over tour-0 .. tour-443 (148 videos each), occlusion over tour-0 .. tour-1343 (448).
# Measured there (corrections, SAM2 alone vs LIT-LoRA with the paper's defaults): appearance tour-263 21 vs 17
# (+4 accepted; 2 of 148 saved any); look-alike tour-75 6 vs 1 (+6 accepted; the only one of the 82 that show a
# look-alike to save any); occlusion tour-79 6 vs 5 (+1 accepted; the only one of the 141 that show an
# occlusion to save any, and one, tour-958, needed one more). SAM2 alone needs no correction on 67 of those 82
# look-alike videos and 111 of those 141 occlusion videos, and 1-2 on most appearance videos.
# The appearance change comes first: the notebooks' video is the app's first sample (litdemo/tour.py), and
# they are written around it. tests/test_app_tour.py asserts the promise on each.
TOUR = (
    TourSample("tour: the object changes its colours and pattern (appearance change)", "tour", 263,
               "the plum ring fades into the background and turns to green checks on frame 14; SAM2 alone loses it, "
               "and each correction shows the adapter the ring again."),
    TourSample("tour: a look-alike of another hue stays close to the object", "tour", 75,
               "a blue-grey look-alike stays pressed against the purple blob; from frame 18 SAM2 alone loses half the "
               "blob and then spills onto the look-alike, while one correction teaches the adapter which one is which."),
    TourSample("tour: something passes in front of the object (occlusion)", "tour", 79,
               "a purple blob passes in front of the green stick figure; SAM2 alone loses the figure behind it and "
               "after it, and the adapter saves one correction here, a small effect next to the other two."),
)


def tour_names() -> list[str]:
    return [s.name for s in TOUR]


def sample_names(assets_dir: Optional[Path] = ASSETS_DIR) -> list[str]:
    names = tour_names() + [SYNTHETIC]
    if assets_dir is not None and assets_dir.is_dir():
        names += sorted(p.name for p in assets_dir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    return names


def load_sample(name: str, cfg: AppConfig, assets_dir: Optional[Path] = ASSETS_DIR) -> tuple[Video, Optional[VideoSample]]:
    """The sample `name` as a Video, plus its VideoSample when it has ground truth."""
    tour = {s.name: s for s in TOUR}
    if name in tour:
        sample = tour[name].render()
        return Video(frames=sample.frames, fps=sample.fps, name=sample.name), sample
    if name == SYNTHETIC:
        sample = make_synthetic_video(num_frames=cfg.sample_frames, height=cfg.sample_height,
                                      width=cfg.sample_width, num_objects=1, seed=0)
        return Video(frames=sample.frames, fps=sample.fps, name="synthetic"), sample
    if name not in sample_names(assets_dir):  # the name comes from the browser: only listed files are opened
        raise ValueError(f"Unknown sample {name!r}; pick one of: {', '.join(sample_names(assets_dir))}.")
    video = load_video(assets_dir / name, max_frames=cfg.max_frames, max_side=cfg.max_side, truncate=True)
    return video, None
