"""DAVIS 2016 / 2017 loader and writer, and the folder reader the DAVIS-like datasets share.

Layout (https://davischallenge.org/davis2017/code.html):

    <root>/JPEGImages/<resolution>/<sequence>/00000.jpg ...
    <root>/Annotations/<resolution>/<sequence>/00000.png ...
    <root>/ImageSets/2017/{train,val}.txt        (DAVIS 2017: one sequence per line)
    <root>/ImageSets/480p/{train,val}.txt        (DAVIS 2016: "/JPEGImages/480p/<seq>/00000.jpg ..." lines)

Annotation PNGs come in two kinds, told apart per file by the PNG mode:
- DAVIS 2016: grey PNG, 0 = background, 255 = the single object  -> object id 1;
- DAVIS 2017: palette PNG, pixel value = object id (1..N), 0 = background. Value 255 marks
  "void" (ambiguous pixels) in the DAVIS tools; it is background in the GT masks and kept as
  `VideoSample.void`, which the paper protocol leaves out of every IoU (the interactive one
  ignores it). Sequences without void pixels are unaffected.

Frames and annotations are matched by file name, so sparsely annotated sequences (DAVIS 2017
test-dev: first frame only) load with GT on just those frames.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..files import atomic_dir
from .base import (
    DatasetError,
    VideoSample,
    binary_from_grey,
    check_no_missing_frames,
    davis_palette,
    finish_sample,
    read_label_png,
    read_frames,
    sorted_files,
)

FRAME_EXTENSIONS = (".jpg", ".jpeg")
VOID_LABEL = 255  # DAVIS/LVOS/VOST "ignore" value in palette annotations


def labels_to_ids(labels: np.ndarray, is_palette: bool) -> np.ndarray:
    """Turn one annotation PNG's values into object ids (0 = background, void dropped)."""
    if not is_palette and binary_from_grey(labels):
        return (labels > 0).astype(np.int32)  # DAVIS 2016 style: one object, id 1
    ids = labels.astype(np.int32)
    ids[ids == VOID_LABEL] = 0  # void/ignore -> background (see module docstring)
    return ids


def load_label_folder(frames_dir: Path, masks_dir: Path, name: str, *, fps: float,
                      max_frames: int | None = None, max_side: int | None = None) -> VideoSample:
    """Read a folder of frames plus a folder of per-frame label PNGs (DAVIS, MOSE, LVOS, VOST).

    Frame index = position in the sorted frame list; an annotation belongs to the frame with
    the same file stem.
    """
    if max_frames is not None and max_frames < 1:
        raise DatasetError(f"max_frames must be >= 1 or None, got {max_frames}")
    if not frames_dir.is_dir():
        raise DatasetError(f"no such sequence '{name}': frame folder {frames_dir} does not exist")
    if not masks_dir.is_dir():
        raise DatasetError(
            f"sequence '{name}' has frames but no annotation folder {masks_dir}; "
            "download the annotations for this split"
        )
    all_frames = sorted_files(frames_dir, FRAME_EXTENSIONS)
    if not all_frames:
        raise DatasetError(f"no .jpg frames in {frames_dir}; re-extract the frames of '{name}'")
    check_no_missing_frames(all_frames, frames_dir)
    index_of = {p.stem: i for i, p in enumerate(all_frames)}
    frame_paths = all_frames[:max_frames]

    annotated: dict[int, Path] = {}
    for png in sorted_files(masks_dir, (".png",)):
        if png.stem not in index_of:
            raise DatasetError(
                f"annotation {png} has no matching frame {png.stem}.jpg in {frames_dir}; "
                "a frame is missing or the annotation is misnamed"
            )
        if index_of[png.stem] < len(frame_paths):
            annotated[index_of[png.stem]] = png
    if not annotated:
        raise DatasetError(f"no annotation PNGs for the loaded frames of '{name}' in {masks_dir}")

    frames, size, full_size = read_frames(frame_paths, max_side)

    label_maps: dict[int, np.ndarray] = {}
    void: dict[int, np.ndarray] = {}
    for t, png in annotated.items():
        labels, is_palette = read_label_png(png)
        if labels.shape != full_size:
            raise DatasetError(
                f"annotation {png} is {labels.shape[1]}x{labels.shape[0]} but frame "
                f"{frame_paths[t].name} is {full_size[1]}x{full_size[0]}; use annotations of the "
                "same resolution as the frames"
            )
        ids = labels_to_ids(labels, is_palette)
        label_maps[t] = resize_labels(ids, size)
        if is_palette:
            void[t] = resize_labels((labels == VOID_LABEL).astype(np.int32), size).astype(bool)

    object_ids = sorted(set().union(*(np.unique(m).tolist() for m in label_maps.values())) - {0})
    # every annotated frame is GT for every object: absent there means an empty mask
    gt = {k: {t: m == k for t, m in sorted(label_maps.items())} for k in object_ids}
    return finish_sample(name, frames, gt, fps, masks_dir, void=void)


def resize_labels(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an id map (ids stay exact)."""
    if ids.shape == size:
        return ids
    return cv2.resize(ids.astype(np.int32), (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def _davis_dirs(root: Path, sequence: str, resolution: str | None) -> tuple[Path, Path]:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"DAVIS root {root} does not exist; pass the folder that holds JPEGImages/ and "
            "Annotations/ (tests read it from LITDEMO_DAVIS_ROOT)"
        )
    sub = (resolution,) if resolution else ()
    frames_root = root.joinpath("JPEGImages", *sub)
    if not frames_root.is_dir():
        raise DatasetError(
            f"{frames_root} does not exist; DAVIS ships JPEGImages/480p and "
            "JPEGImages/Full-Resolution: pass resolution='480p', 'Full-Resolution', or None for "
            "a flat JPEGImages/<sequence>/ layout"
        )
    return frames_root / sequence, root.joinpath("Annotations", *sub) / sequence


def load_davis(root: str | Path, sequence: str, resolution: str | None = "480p",
               max_frames: int | None = None, max_side: int | None = None,
               fps: float = 24.0) -> VideoSample:
    """Load one DAVIS 2016 or 2017 sequence (binary or palette PNGs, detected per file).

    max_frames keeps the first N frames; max_side downscales so the longer side is at most that
    many pixels (frames area-averaged, masks nearest). DAVIS frames are 24 fps.
    """
    frames_dir, masks_dir = _davis_dirs(Path(root), sequence, resolution)
    if not frames_dir.is_dir():
        available = ", ".join(list_davis_sequences(root, resolution, split=None)[:12])
        raise DatasetError(f"no such sequence '{sequence}' in {frames_dir.parent}; available: {available}")
    return load_label_folder(frames_dir, masks_dir, sequence, fps=fps,
                             max_frames=max_frames, max_side=max_side)


def list_davis_sequences(root: str | Path, resolution: str | None = "480p",
                         split: str | None = "val") -> list[str]:
    """Sequence names of a split, from ImageSets when the download has them, else all folders.

    split=None lists every sequence folder under JPEGImages.
    """
    root = Path(root)
    frames_root = _davis_dirs(root, "", resolution)[0]
    folders = sorted(p.name for p in frames_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    sets = root / "ImageSets"
    if split is None or not sets.is_dir():
        return folders
    candidates = [sets / "2017" / f"{split}.txt"]
    if resolution:
        candidates.append(sets / resolution / f"{split}.txt")
    candidates.append(sets / f"{split}.txt")
    for path in candidates:
        if path.is_file():
            return _read_image_set(path)
    listed = sorted(str(p.relative_to(sets)) for p in sets.rglob("*.txt"))
    raise DatasetError(
        f"no list for split '{split}' under {sets} (found: {', '.join(listed) or 'nothing'}); "
        "pass one of those splits, or split=None to list every sequence folder"
    )


def _read_image_set(path: Path) -> list[str]:
    """Sequence names of an ImageSets file (2017: one name per line; 2016: frame paths)."""
    names: list[str] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        first = line.split()[0]
        # 2016 lines look like "/JPEGImages/480p/bear/00000.jpg /Annotations/480p/bear/00000.png"
        name = Path(first).parent.name if "/" in first else first
        if name not in names:
            names.append(name)
    return names


def save_davis_layout(sample: VideoSample, root: str | Path, resolution: str | None = "480p",
                      overwrite: bool = False) -> Path:
    """Write `sample` as a DAVIS 2017 sequence (JPEG frames, palette PNG per annotated frame).

    Each sequence folder is written under a temporary name and renamed when complete. Returns
    the frame folder. Objects must not overlap and must share annotated frames, since one
    palette PNG holds one id per pixel for all objects; use `save_sav_layout` otherwise.
    """
    ids = sample.object_ids()
    if any(not 1 <= k < VOID_LABEL for k in ids):
        raise DatasetError(f"{sample.name}: DAVIS palette PNGs hold object ids 1..254, got {ids}")
    frame_sets = {k: tuple(sample.annotated_frames(k)) for k in ids}
    if len(set(frame_sets.values())) > 1:
        raise DatasetError(
            f"{sample.name}: objects are annotated on different frames, which one palette PNG "
            "per frame cannot express; use save_sav_layout (one PNG per object) instead"
        )
    # build every label map first: a bad sample must fail before anything is written
    label_maps = {}
    for t in frame_sets[ids[0]]:
        labels = np.zeros((sample.height, sample.width), np.uint8)
        for k in ids:
            mask = sample.gt[k][t]
            if (labels[mask] != 0).any():
                raise DatasetError(
                    f"{sample.name}: objects overlap on frame {t}; a palette PNG holds one id "
                    "per pixel, so use save_sav_layout for overlapping objects"
                )
            labels[mask] = k
        label_maps[t] = labels
    frames_dir, masks_dir = _davis_dirs_for_write(Path(root), sample.name, resolution)
    palette = davis_palette().reshape(-1).tolist()
    with atomic_dir(frames_dir, overwrite) as tmp:
        for t, rgb in enumerate(sample.frames):
            Image.fromarray(rgb).save(tmp / f"{t:05d}.jpg", quality=95, subsampling=0)
    with atomic_dir(masks_dir, overwrite) as tmp:
        for t, labels in label_maps.items():
            png = Image.fromarray(labels, mode="P")
            png.putpalette(palette)
            png.save(tmp / f"{t:05d}.png")
    return frames_dir


def _davis_dirs_for_write(root: Path, name: str, resolution: str | None) -> tuple[Path, Path]:
    sub = (resolution,) if resolution else ()
    return root.joinpath("JPEGImages", *sub, name), root.joinpath("Annotations", *sub, name)
