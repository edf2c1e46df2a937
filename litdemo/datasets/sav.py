"""SA-V (Segment Anything Video) loader: the val/test frame layout and the train mp4 + JSON layout.

See https://github.com/facebookresearch/sam2/tree/main/sav_dataset (README) for both layouts.

val / test (what the paper's SA-V numbers use):

    <root>/JPEGImages_24fps/<video_id>/00000.jpg ...       every frame, 24 fps
    <root>/Annotations_6fps/<video_id>/000/00000.png ...   one folder per object, one binary PNG
                                   /000/00004.png ...      every 4th frame (6 fps)
    <root>/sav_val.txt or sav_test.txt                     video ids (optional)

train:

    <root>/<video_id>.mp4                24 fps video
    <root>/<video_id>_manual.json        "masklet": [annotated frame][object] -> COCO RLE,
                                         "masklet_id": [object ids]; frame i of the list is
                                         video frame 4 * i (annotated at 6 fps)

Differences from DAVIS we handle here:
- objects may overlap (one PNG / RLE per object), so masks are kept per object;
- object folders / masklet ids start at 0, while our ids keep 0 for background: object id =
  SA-V id + 1 (folder "000" -> object 1);
- ground truth exists on every 4th frame only; `VideoSample.gt` just holds those frames.

COCO RLE is decoded here (a few lines) so pycocotools is not needed.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..files import atomic_dir
from .base import (
    DatasetError,
    VideoSample,
    check_no_missing_frames,
    finish_sample,
    read_frames,
    read_label_png,
    resize_mask,
    resize_rgb,
    scale_for,
    sorted_files,
)
from .davis import FRAME_EXTENSIONS

SAV_FPS = 24.0  # SA-V videos and extracted frames are 24 fps
ANNOTATION_STRIDE = 4  # masklets are annotated at 6 fps, i.e. every 4th 24-fps frame


# ---------------------------------------------------------------------------------------------
# COCO run-length encoding. Runs alternate background/foreground starting with background and
# walk the mask column by column (Fortran order). The compressed string stores each run in
# 5-bit groups (least significant first) offset into printable ASCII by 48; bit 0x20 says
# "another group follows", bit 0x10 of the last group is the sign. Runs after the second are
# stored as differences to the run two places back, which keeps the numbers small.


def _counts_from_string(s: str) -> list[int]:
    counts: list[int] = []
    pos = 0
    while pos < len(s):
        value, shift, more = 0, 0, True
        while more:
            group = ord(s[pos]) - 48
            pos += 1
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            shift += 5
            if not more and group & 0x10:
                value |= -1 << shift  # sign-extend a negative difference
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _counts_to_string(counts: list[int]) -> str:
    chars: list[str] = []
    for i, count in enumerate(counts):
        value = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            group = value & 0x1F
            value >>= 5
            # stop once the rest is pure sign extension of the bit just written
            more = value != -1 if group & 0x10 else value != 0
            if more:
                group |= 0x20
            chars.append(chr(group + 48))
    return "".join(chars)


def decode_rle(rle: dict, source: str = "RLE") -> np.ndarray:
    """(H, W) bool mask of a COCO RLE dict {"size": [H, W], "counts": str | list[int]}."""
    try:
        height, width = (int(v) for v in rle["size"])
        counts = rle["counts"]
        counts = _counts_from_string(counts) if isinstance(counts, str) else [int(c) for c in counts]
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise DatasetError(f"{source}: not a COCO RLE dict with 'size' and 'counts' ({e})") from e
    if sum(counts) != height * width or any(c < 0 for c in counts):
        raise DatasetError(
            f"{source}: RLE runs sum to {sum(counts)} but size {height}x{width} needs "
            f"{height * width}; the annotation file is corrupt, re-download it"
        )
    values = np.arange(len(counts)) % 2 == 1  # runs alternate 0, 1, 0, ...
    flat = np.repeat(values, counts)
    return flat.reshape((height, width), order="F")


def encode_rle(mask: np.ndarray) -> dict:
    """COCO compressed RLE of an (H, W) bool mask (inverse of `decode_rle`)."""
    flat = np.asarray(mask, bool).reshape(-1, order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(edges).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts  # runs must start with background
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": _counts_to_string(counts)}


# ---------------------------------------------------------------------------------------------
# Loading


def load_sav(root: str | Path, video_id: str, max_frames: int | None = None,
             max_side: int | None = None, *, masklets: str = "manual") -> VideoSample:
    """Load one SA-V video from either layout (detected from the files under `root`).

    masklets picks the train-layout JSON ("manual" as in the paper's SA-V training data, or
    "auto"); it is ignored for val/test, whose masklets are all manual.
    """
    root = Path(root)
    if max_frames is not None and max_frames < 1:
        raise DatasetError(f"max_frames must be >= 1 or None, got {max_frames}")
    if not root.is_dir():
        raise DatasetError(f"SA-V root {root} does not exist; pass the sav_val/sav_test/sav_train folder")
    if (root / "JPEGImages_24fps").is_dir():
        return _load_sav_frames(root, video_id, max_frames, max_side)
    mp4, ann = _train_files(root, video_id, masklets)
    return _load_sav_train(mp4, ann, video_id, max_frames, max_side)


def list_sav_videos(root: str | Path) -> list[str]:
    """Video ids under an SA-V root: from sav_val.txt / sav_test.txt, else the folders / JSONs."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"SA-V root {root} does not exist")
    if (root / "JPEGImages_24fps").is_dir():
        for split_file in (root / "sav_val.txt", root / "sav_test.txt"):
            if split_file.is_file():
                return [ln.strip() for ln in split_file.read_text().splitlines() if ln.strip()]
        return sorted(p.name for p in (root / "Annotations_6fps").iterdir() if p.is_dir())
    jsons = list(root.glob("*_manual.json")) + list(root.glob("*/*_manual.json"))
    if not jsons:
        raise DatasetError(
            f"{root} holds neither JPEGImages_24fps/ (SA-V val/test) nor *_manual.json files "
            "(SA-V train); point root at the extracted split folder"
        )
    return sorted(p.name[: -len("_manual.json")] for p in jsons)


def _load_sav_frames(root: Path, video_id: str, max_frames: int | None,
                     max_side: int | None) -> VideoSample:
    frames_dir = root / "JPEGImages_24fps" / video_id
    ann_dir = root / "Annotations_6fps" / video_id
    if not frames_dir.is_dir():
        raise DatasetError(f"no such SA-V video '{video_id}': {frames_dir} does not exist")
    if not ann_dir.is_dir():
        raise DatasetError(f"SA-V video '{video_id}' has frames but no annotations at {ann_dir}")
    all_frames = sorted_files(frames_dir, FRAME_EXTENSIONS)
    if not all_frames:
        raise DatasetError(f"no .jpg frames in {frames_dir}; re-extract this video")
    check_no_missing_frames(all_frames, frames_dir)
    index_of = {p.stem: i for i, p in enumerate(all_frames)}
    frame_paths = all_frames[:max_frames]
    frames, size, full_size = read_frames(frame_paths, max_side)

    gt: dict[int, dict[int, np.ndarray]] = {}
    obj_dirs = sorted(p for p in ann_dir.iterdir() if p.is_dir())
    if not obj_dirs:
        raise DatasetError(f"no object folders (000, 001, ...) in {ann_dir}")
    for obj_dir in obj_dirs:
        if not obj_dir.name.isdigit():
            raise DatasetError(f"object folder {obj_dir} is not numbered (expected 000, 001, ...)")
        per_frame: dict[int, np.ndarray] = {}
        for png in sorted_files(obj_dir, (".png",)):
            if png.stem not in index_of:
                raise DatasetError(
                    f"annotation {png} has no matching frame {png.stem}.jpg in {frames_dir}; "
                    "a frame is missing or the annotation is misnamed"
                )
            t = index_of[png.stem]
            if t >= len(frame_paths):
                continue
            labels, _ = read_label_png(png)
            if labels.shape != full_size:
                raise DatasetError(
                    f"annotation {png} is {labels.shape[1]}x{labels.shape[0]} but the frames in "
                    f"{frames_dir} are {full_size[1]}x{full_size[0]}"
                )
            per_frame[t] = resize_mask(labels > 0, size)
        gt[int(obj_dir.name) + 1] = per_frame
    return finish_sample(video_id, frames, gt, SAV_FPS, ann_dir)


def _train_files(root: Path, video_id: str, masklets: str) -> tuple[Path, Path]:
    if masklets not in ("manual", "auto"):
        raise DatasetError(f"masklets must be 'manual' or 'auto', got {masklets!r}")
    for folder in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        ann = folder / f"{video_id}_{masklets}.json"
        if ann.is_file():
            mp4 = folder / f"{video_id}.mp4"
            if not mp4.is_file():
                raise DatasetError(f"{ann} has no video next to it: {mp4} is missing")
            return mp4, ann
    raise DatasetError(
        f"no such SA-V video '{video_id}' under {root}: expected {video_id}_{masklets}.json + "
        f"{video_id}.mp4 (train layout) or JPEGImages_24fps/{video_id}/ (val/test layout)"
    )


def _load_sav_train(mp4: Path, ann: Path, video_id: str, max_frames: int | None,
                    max_side: int | None) -> VideoSample:
    try:
        meta = json.loads(ann.read_text())
        per_frame_rles = meta["masklet"]  # [annotated frame][object] -> RLE
        masklet_ids = [int(i) for i in meta.get("masklet_id", range(len(per_frame_rles[0])))]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, IndexError, ValueError) as e:
        raise DatasetError(
            f"cannot read SA-V masklets from {ann}: {e}; the file should be the {video_id} JSON "
            "of the SA-V release with 'masklet' and 'masklet_id' keys, re-download it"
        ) from e
    frames, fps = _read_video(mp4, max_frames)
    full_size = frames[0].shape[:2]
    size = scale_for(*full_size, max_side)
    frames = [resize_rgb(f, size) for f in frames]

    gt: dict[int, dict[int, np.ndarray]] = {k + 1: {} for k in masklet_ids}
    for i, rles in enumerate(per_frame_rles):
        t = i * ANNOTATION_STRIDE
        if t >= len(frames):
            if max_frames is None or t < max_frames:
                raise DatasetError(
                    f"{ann} annotates video frame {t} but {mp4} decodes to {len(frames)} frames; "
                    "the video or the JSON is truncated, re-download both"
                )
            break
        if len(rles) != len(masklet_ids):
            raise DatasetError(f"{ann}: annotated frame {i} has {len(rles)} masks for {len(masklet_ids)} masklets")
        for k, rle in zip(masklet_ids, rles):
            mask = decode_rle(rle, f"{ann} (frame {t}, masklet {k})")
            if mask.shape != full_size:
                raise DatasetError(
                    f"{ann}: masklet {k} on frame {t} is {mask.shape[1]}x{mask.shape[0]} but "
                    f"{mp4} is {full_size[1]}x{full_size[0]}"
                )
            gt[k + 1][t] = resize_mask(mask, size)
    return finish_sample(video_id, frames, gt, fps, ann)


def _read_video(mp4: Path, max_frames: int | None) -> tuple[list[np.ndarray], float]:
    """Decode an mp4 to RGB frames with imageio's ffmpeg plugin (ships with imageio-ffmpeg)."""
    import imageio.v2 as imageio

    frames: list[np.ndarray] = []
    try:
        with imageio.get_reader(mp4, format="FFMPEG") as reader:
            fps = float(reader.get_meta_data().get("fps") or SAV_FPS)
            for frame in reader:
                frames.append(np.ascontiguousarray(frame[..., :3], dtype=np.uint8))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except Exception as e:  # imageio raises OSError/RuntimeError/IndexError depending on the damage
        raise DatasetError(f"cannot decode video {mp4}: {e}; re-download it") from e
    if not frames:
        raise DatasetError(f"video {mp4} decodes to no frames; re-download it")
    return frames, fps


# ---------------------------------------------------------------------------------------------
# Writing (val/test layout): tests, and exporting synthetic videos for the SA-V evaluator.


def save_sav_layout(sample: VideoSample, root: str | Path, overwrite: bool = False) -> Path:
    """Write `sample` in the SA-V val/test layout; returns the video's frame folder."""
    root = Path(root)
    frames_dir = root / "JPEGImages_24fps" / sample.name
    ann_dir = root / "Annotations_6fps" / sample.name
    with atomic_dir(frames_dir, overwrite) as tmp:
        for t, rgb in enumerate(sample.frames):
            Image.fromarray(rgb).save(tmp / f"{t:05d}.jpg", quality=95, subsampling=0)
    with atomic_dir(ann_dir, overwrite) as tmp:
        for k in sample.object_ids():
            obj_dir = tmp / f"{k - 1:03d}"
            obj_dir.mkdir()
            for t, mask in sorted(sample.gt[k].items()):
                Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(obj_dir / f"{t:05d}.png")
    return frames_dir
