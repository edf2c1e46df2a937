"""Turning an upload into a Video without trusting it.

An upload is copied into the session's own folder under a generated name before anything
reads it: the name the browser sent is only used to pick the file type, never as a path.
Zips are unpacked member by member into generated names, with limits on count and size.
"""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from ..video_io import IMAGE_SUFFIXES, Video, VideoError, load_video
from .config import AppConfig

VIDEO_UPLOADS = (".mp4", ".webm", ".mov")
ARCHIVE_UPLOADS = (".zip",)


def ingest_upload(upload_path: str | Path, original_name: str, workdir: Path, cfg: AppConfig, *, stride: int = 1,
                  truncate: bool = False) -> Video:
    """Copy `upload_path` into `workdir` and open it as a Video (VideoError with a clear message otherwise)."""
    src = Path(upload_path)
    suffix = Path(original_name or src.name).suffix.lower()
    if suffix not in VIDEO_UPLOADS + ARCHIVE_UPLOADS:
        raise VideoError(f"'{Path(original_name).name}' is not a supported upload; give an mp4, webm or mov video, "
                         f"or a zip of JPEG/PNG frames.")
    if not src.is_file():
        raise VideoError("The upload did not arrive; please upload the file again.")
    size_mb = src.stat().st_size / 2**20
    if size_mb > cfg.max_upload_mb:
        raise VideoError(f"The file is {size_mb:.1f} MB, above the {cfg.max_upload_mb:g} MB limit; cut or compress "
                         f"it (e.g. ffmpeg -i in.mp4 -t 10 -vf scale=854:-2 out.mp4) and upload again.")
    index = len(list(workdir.glob("upload_*"))) + 1  # a fresh generated name per upload
    name = f"video_{index}"
    if suffix in ARCHIVE_UPLOADS:
        folder = workdir / f"upload_{index}"
        _unpack_frames(src, folder, cfg)
        source: Path = folder
    else:
        source = workdir / f"upload_{index}{suffix}"
        shutil.copyfile(src, source)
    video = load_video(source, max_frames=cfg.max_frames, max_side=cfg.max_side, stride=stride, truncate=truncate,
                       name=name)
    _check_video(video)
    return video


def _unpack_frames(archive: Path, folder: Path, cfg: AppConfig) -> None:
    """Extract the images of a zip as folder/00000.<ext>, ... in the order of their names in the zip."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise VideoError(f"The zip could not be read ({err}); zip the frames again (JPEG/PNG files).") from err
    with zf:
        members = sorted((m for m in zf.infolist() if not m.is_dir() and Path(m.filename).suffix.lower()
                          in IMAGE_SUFFIXES and not Path(m.filename).name.startswith(".")), key=lambda m: m.filename)
        if not members:
            raise VideoError("The zip holds no JPEG/PNG frames; put the frames (00000.jpg, 00001.jpg, ...) in a zip.")
        if len(members) > cfg.max_zip_images:
            raise VideoError(f"The zip holds {len(members)} images, above the {cfg.max_zip_images} limit; "
                             f"keep every n-th frame before zipping.")
        total_mb = sum(m.file_size for m in members) / 2**20
        if total_mb > cfg.max_unzipped_mb:
            raise VideoError(f"The zip unpacks to {total_mb:.0f} MB, above the {cfg.max_unzipped_mb:g} MB limit.")
        folder.mkdir(parents=True)
        for i, member in enumerate(members):
            # The member's name only chooses the order and the extension; the path is ours.
            target = folder / f"{i:05d}{Path(member.filename).suffix.lower()}"
            with zf.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)


def _check_video(video: Video) -> None:
    if video.num_frames == 0:
        raise VideoError("The video has no frames.")
    if min(video.height, video.width) < 16:
        raise VideoError(f"The frames are {video.width}x{video.height} pixels; give a video at least 16 px on each side.")
