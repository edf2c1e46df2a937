"""A synthetic video generator with exact ground truth: no download, deterministic per seed.

Each video shows textured blobs (the objects) moving over a textured, slowly panning
background, with the difficulties that make a tracker need corrections:

- motion: each object bounces along its own path (objects keep to separate horizontal bands,
  so they never cover each other and each GT mask is non-empty on every frame);
- deformation: the outline is a circle whose radius is modulated by 2nd and 3rd angular
  harmonics with time-varying phase, plus a slow rotation;
- occlusion: an opaque vertical bar sweeps across the frame and crosses object 1 at mid-video;
  it is narrower than any object, so occluded objects stay partly visible (GT = visible part);
- distractor: a look-alike of object 1 (same colour, texture, size and deformation) on another
  path, drawn behind the objects and absent from the ground truth;
- camouflage: the objects are painted with the background's own texture (slightly brighter),
  so only their motion and a faint edge give them away.

Used by the tests, the offline demo and the benchmark on machines without datasets.
"""
from __future__ import annotations

import colorsys

import cv2
import numpy as np

from .base import DatasetError, VideoSample

DEFORM_AMPLITUDE = 0.25  # max relative radius change: visibly non-rigid, still one blob
PAN_MARGIN = 24  # pixels of extra background on each side, so the camera can pan


def make_synthetic_video(num_frames: int = 30, height: int = 128, width: int = 160,
                         num_objects: int = 1, seed: int = 0, *, occlusion: bool = True,
                         distractor: bool = True, camouflage: bool = False, deform: bool = True,
                         noise: float = 4.0) -> VideoSample:
    """Render a video and its per-object GT (every frame annotated); `noise` is the std of
    per-pixel Gaussian noise in 0..255 units (sensor noise, so frames never repeat exactly)."""
    _check_args(num_frames, height, width, num_objects, noise)
    rng = np.random.default_rng(seed)
    canvas = _background(rng, height + 2 * PAN_MARGIN, width + 2 * PAN_MARGIN)  # (H+2P, W+2P, 3)
    pan = rng.uniform(-1, 1, size=2) * PAN_MARGIN * 0.8  # total camera shift over the video (x, y)
    band = height / num_objects
    objects = [_random_object(rng, k, num_objects, band, height, width, num_frames, canvas)
               for k in range(num_objects)]
    for obj in objects:
        obj["camouflage"] = camouflage
        obj["deform"] = obj["deform"] if deform else 0.0
    look_alike = _look_alike(rng, objects[0], height, width, num_frames) if distractor else None
    bar = _occluder(rng, objects[0], width, num_frames) if occlusion else None

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)  # (H, W) pixel rows / columns
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    gt: dict[int, dict[int, np.ndarray]] = {k + 1: {} for k in range(num_objects)}
    for t in range(num_frames):
        shift = (pan * t / max(num_frames - 1, 1)).round().astype(int)  # (x, y) camera offset
        oy, ox = PAN_MARGIN + shift[1], PAN_MARGIN + shift[0]
        image = canvas[oy:oy + height, ox:ox + width].copy()  # (H, W, 3) float
        if look_alike is not None:
            _paint(image, look_alike, t, xx, yy, canvas)
        inside = [_paint(image, obj, t, xx, yy, canvas) for obj in objects]
        hidden = np.zeros((height, width), bool)
        if bar is not None:
            hidden = _paint_bar(image, bar, t, xx)
        for k, mask in enumerate(inside):
            gt[k + 1][t] = mask & ~hidden
        image += rng.normal(0.0, noise, size=image.shape) if noise > 0 else 0.0
        frames[t] = np.clip(image, 0, 255).round().astype(np.uint8)
    return VideoSample(name=f"synthetic-{seed}", frames=frames, gt=gt, fps=24.0)


def _check_args(num_frames: int, height: int, width: int, num_objects: int, noise: float) -> None:
    if num_frames < 1:
        raise DatasetError(f"num_frames must be >= 1, got {num_frames}")
    if height < 32 or width < 32:
        raise DatasetError(f"height and width must be >= 32 pixels, got {height}x{width}")
    if not 1 <= num_objects <= height // 24:
        raise DatasetError(
            f"num_objects={num_objects} does not fit a {height}-pixel-high frame: each object "
            f"needs a 24-pixel band, so use 1..{height // 24} or a taller frame"
        )
    if noise < 0:
        raise DatasetError(f"noise is a standard deviation and must be >= 0, got {noise}")


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(H, W, 3) float texture: smooth colour blobs + a few gratings + fine grain."""
    hue = rng.uniform()
    base = np.array(colorsys.hsv_to_rgb(hue, 0.35, 0.55)) * 255
    coarse = rng.normal(0, 1, size=(height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC) * 22
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    gratings = np.zeros((height, width), np.float32)
    for _ in range(3):
        angle, period, phase = rng.uniform(0, np.pi), rng.uniform(6, 20), rng.uniform(0, 2 * np.pi)
        gratings += np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period + phase)
    grain = cv2.GaussianBlur(rng.normal(0, 10, size=(height, width, 3)).astype(np.float32), (3, 3), 0)
    return base + smooth + 9 * gratings[..., None] + grain


def _random_object(rng: np.random.Generator, k: int, num_objects: int, band: float, height: int,
                   width: int, num_frames: int, canvas: np.ndarray) -> dict:
    """Path, shape and appearance of object k (confined to horizontal band k)."""
    radius = min(0.16 * min(height, width), (band / 2 - 2) / (1 + DEFORM_AMPLITUDE))
    reach = radius * (1 + DEFORM_AMPLITUDE) + 1  # farthest outline point from the centre
    hue = (0.6 + 0.61 * k) % 1.0  # golden-ish steps: neighbouring objects differ in colour
    return {
        "radius": radius,
        "x_range": (reach, width - reach),
        "x0": rng.uniform(reach, width - reach),
        "vx": rng.choice([-1, 1]) * rng.uniform(1.5, 3.0) * 30 / max(num_frames, 30),
        "y_centre": band * (k + 0.5),
        "y_swing": max(0.0, min(band / 2 - reach, 0.15 * height)),
        "y_period": rng.uniform(0.6, 1.4) * num_frames,
        "harmonics": rng.uniform(0, 2 * np.pi, size=4),  # phases of the 2nd/3rd harmonics
        "deform": DEFORM_AMPLITUDE * rng.uniform(0.6, 1.0),
        "spin": rng.uniform(-0.06, 0.06),  # radians per frame
        "colour": np.array(colorsys.hsv_to_rgb(hue, 0.8, 0.9)) * 255,
        "stripe_angle": rng.uniform(0, np.pi),
        "anchor": (rng.uniform(0.3, 0.7) * canvas.shape[0], rng.uniform(0.3, 0.7) * canvas.shape[1]),
        "camouflage": False,  # set by the caller
    }


def _look_alike(rng: np.random.Generator, obj: dict, height: int, width: int, num_frames: int) -> dict:
    """A copy of object 1's look on its own path, anywhere in the frame."""
    twin = dict(obj)
    reach = obj["radius"] * (1 + DEFORM_AMPLITUDE) + 1
    twin.update(
        x0=width - obj["x0"], vx=-obj["vx"] * rng.uniform(0.7, 1.3),
        y_centre=rng.uniform(reach, height - reach), y_swing=0.1 * height,
        y_period=rng.uniform(0.6, 1.4) * num_frames, harmonics=rng.uniform(0, 2 * np.pi, size=4),
    )
    return twin


def _occluder(rng: np.random.Generator, target: dict, width: int, num_frames: int) -> dict:
    """A vertical bar that lines up with `target` at mid-video; narrower than any object."""
    return {
        "half_width": 0.35 * target["radius"] * (1 - DEFORM_AMPLITUDE),
        "speed": rng.choice([-1, 1]) * 1.6 * width / max(num_frames, 2),
        "target": target,
        "t_cross": (num_frames - 1) / 2,
        "colour": rng.uniform(40, 90, size=3),
    }


def _centre(obj: dict, t: float) -> tuple[float, float]:
    lo, hi = obj["x_range"]
    span = hi - lo
    # bounce between lo and hi: reflect the unbounded position into the range
    u = (obj["x0"] - lo + obj["vx"] * t) % (2 * span)
    x = lo + (u if u <= span else 2 * span - u)
    y = obj["y_centre"] + obj["y_swing"] * np.sin(2 * np.pi * t / obj["y_period"])
    return x, y


def _paint(image: np.ndarray, obj: dict, t: int, xx: np.ndarray, yy: np.ndarray,
           canvas: np.ndarray) -> np.ndarray:
    """Draw `obj` at time t into image (H, W, 3) in place; return its (H, W) bool footprint."""
    cx, cy = _centre(obj, t)
    dx, dy = xx - cx, yy - cy
    theta = np.arctan2(dy, dx) - obj["spin"] * t
    p = obj["harmonics"]
    wobble = 0.6 * np.sin(2 * theta + p[0] + 0.15 * t) + 0.4 * np.sin(3 * theta + p[1] - 0.1 * t)
    radius = obj["radius"] * (1 + obj["deform"] * wobble)
    inside = np.hypot(dx, dy) <= radius
    if obj["camouflage"]:
        # the background texture around a fixed anchor, carried along with the object
        ys = np.clip((dy + obj["anchor"][0]).astype(int), 0, canvas.shape[0] - 1)
        xs = np.clip((dx + obj["anchor"][1]).astype(int), 0, canvas.shape[1] - 1)
        image[inside] = canvas[ys[inside], xs[inside]] + 12
    else:
        a = obj["stripe_angle"] + obj["spin"] * t  # stripes turn with the object
        stripes = np.sin((dx * np.cos(a) + dy * np.sin(a)) * 2 * np.pi / 7)
        image[inside] = obj["colour"] * (0.8 + 0.2 * stripes[inside, None])
    return inside


def _paint_bar(image: np.ndarray, bar: dict, t: int, xx: np.ndarray) -> np.ndarray:
    x_target, _ = _centre(bar["target"], t)
    x = x_target + bar["speed"] * (t - bar["t_cross"])
    covered = np.abs(xx - x) <= bar["half_width"]
    shade = 0.85 + 0.15 * np.sin(xx[covered] * 1.3)
    image[covered] = bar["colour"] * shade[:, None]
    return covered
