"""Turning an upload into a Video without trusting it.

An upload is copied into the session's own folder under a generated name before anything
reads it: the name the browser sent is only used to pick the file type, never as a path.
Zips are unpacked member by member into generated names, with limits on count and size.
"""
from __future__ import annotations

import shutil
import zipfile
import zlib
from pathlib import Path
from typing import Optional

from ..video_io import IMAGE_SUFFIXES, TooManyFramesError, Video, VideoError, load_video
from .config import AppConfig

VIDEO_UPLOADS = (".mp4", ".webm", ".mov")
ARCHIVE_UPLOADS = (".zip",)


# The upload controls as the page labels them, so messages can point at them.
STRIDE_LABEL = "keep every n-th frame"
TRUNCATE_LABEL = "cut after {max_frames} frames"


def ingest_upload(upload_path: str | Path, original_name: str, workdir: Path, cfg: AppConfig, *, stride: int = 1,
                  truncate: bool = False) -> Video:
    """Copy `upload_path` into `workdir` and open it as a Video (VideoError with a clear message otherwise).

    Messages name the user's file (and zip member), never our server paths. Whatever fails, the
    copy is removed again: a refused upload leaves nothing on disk.
    """
    src = Path(upload_path)
    shown = Path(original_name or src.name).name  # the user's name for it, for messages only
    suffix = Path(shown).suffix.lower()
    if suffix not in VIDEO_UPLOADS + ARCHIVE_UPLOADS:
        raise VideoError(f"'{shown}' is not a supported upload; give an mp4, webm or mov video, "
                         f"or a zip of JPEG/PNG frames.")
    if not src.is_file():
        raise VideoError("The upload did not arrive; please upload the file again.")
    size_mb = src.stat().st_size / 2**20
    if size_mb > cfg.max_upload_mb:
        raise VideoError(f"The file is {size_mb:.1f} MB, above the {cfg.max_upload_mb:g} MB limit; cut or compress "
                         f"it (e.g. ffmpeg -i in.mp4 -t 10 -vf scale=854:-2 out.mp4) and upload again.")
    index = _next_index(workdir)
    target = workdir / (f"upload_{index}" if suffix in ARCHIVE_UPLOADS else f"upload_{index}{suffix}")
    try:
        members = None  # {our frame file name: the zip member's name}, for messages
        if suffix in ARCHIVE_UPLOADS:
            members = _unpack_frames(src, target, cfg)
        else:
            shutil.copyfile(src, target)
        video = load_video(target, max_frames=cfg.max_frames, max_side=cfg.max_side, stride=stride,
                           truncate=truncate, name=f"video_{index}", label=_namer(target, shown, members))
        _check_video(video)
    except TooManyFramesError as err:
        _remove(target)
        raise VideoError(_too_many_frames(shown, err, stride)) from None
    except BaseException:
        _remove(target)  # a refused upload takes no disk space until the session ends
        raise
    return video


def _namer(target: Path, shown: str, members: Optional[dict[str, str]]):
    """How messages name a file of the upload: the user's file name, or the zip member's name."""
    def name(path: Path) -> str:
        if members is not None and path != target:
            return f"zip member '{members.get(path.name, path.name)}'"
        return f"'{shown}'"
    return name


def _too_many_frames(shown: str, err: TooManyFramesError, stride: int) -> str:
    kept = f" after keeping every {stride}th" if stride > 1 else ""
    return (f"'{shown}' has {err.num_frames} frames{kept}, more than the {err.max_frames} this app takes: tick "
            f"'{TRUNCATE_LABEL.format(max_frames=err.max_frames)}' to keep the first {err.max_frames}, or set "
            f"'{STRIDE_LABEL}' to {err.stride_needed * stride} and load again.")


def _next_index(workdir: Path) -> int:
    """One more than the highest upload number in use (removed uploads leave gaps, never clashes)."""
    used = [int(p.name[len("upload_"):].split(".")[0]) for p in workdir.glob("upload_*")
            if p.name[len("upload_"):].split(".")[0].isdigit()]
    return max(used, default=0) + 1


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _unpack_frames(archive: Path, folder: Path, cfg: AppConfig) -> dict[str, str]:
    """Extract the images of a zip as folder/00000.<ext>, ... in the order of their names in the zip.

    Returns {our file name: the member's name in the zip}, for messages. The sizes the zip
    declares are checked first, and the bytes really written are counted too, since a forged
    header can declare less than a member holds.
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise VideoError("The zip could not be read (it is damaged or not a zip); zip the frames again "
                         "(JPEG/PNG files).") from None
    with zf:
        members = sorted((m for m in zf.infolist() if not m.is_dir() and Path(m.filename).suffix.lower()
                          in IMAGE_SUFFIXES and not Path(m.filename).name.startswith(".")), key=lambda m: m.filename)
        if not members:
            raise VideoError("The zip holds no JPEG/PNG frames; put the frames (00000.jpg, 00001.jpg, ...) in a zip.")
        if len(members) > cfg.max_zip_images:
            raise VideoError(f"The zip holds {len(members)} images, above the {cfg.max_zip_images} limit; "
                             f"keep every n-th frame before zipping.")
        limit = cfg.max_unzipped_mb * 2**20
        total_mb = sum(m.file_size for m in members) / 2**20
        if total_mb * 2**20 > limit:
            raise VideoError(f"The zip unpacks to {total_mb:.0f} MB, above the {cfg.max_unzipped_mb:g} MB limit.")
        folder.mkdir(parents=True)
        names, written = {}, 0
        for i, member in enumerate(members):
            # The member's name only chooses the order and the extension; the path is ours.
            target = folder / f"{i:05d}{Path(member.filename).suffix.lower()}"
            names[target.name] = member.filename
            try:
                with zf.open(member) as src, open(target, "wb") as dst:
                    while chunk := src.read(2**20):
                        written += len(chunk)
                        if written > limit:
                            raise VideoError(f"The zip unpacks to more than the {cfg.max_unzipped_mb:g} MB limit "
                                             f"(its headers understate the sizes).")
                        dst.write(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as err:
                raise VideoError(f"Member '{member.filename}' of the zip is damaged or cannot be unpacked "
                                 f"({_zip_reason(err)}); zip the frames again.") from None
    return names


def _zip_reason(err: Exception) -> str:
    if isinstance(err, NotImplementedError):
        return "it uses a compression method this server does not read"
    if isinstance(err, RuntimeError):
        return "it is encrypted"
    return "its data does not match its checksum" if "CRC" in str(err) else "its data is cut short or corrupt"


def _check_video(video: Video) -> None:
    if video.num_frames == 0:
        raise VideoError("The video has no frames.")
    if min(video.height, video.width) < 16:
        raise VideoError(f"The frames are {video.width}x{video.height} pixels; give a video at least 16 px on each side.")
