"""Procedural videos for training and evaluating the micro SAM2: shapes, textures and events.

    video = make_procedural_video("hard", 3)           # the 4th video of the held-out hard split
    clip = make_procedural_video("train", 12345, num_frames=8)

Every video is drawn from a seed that names its split, so the splits can never share a video:
`np.random.SeedSequence([SPLIT_CODE[split], index])` gives disjoint random streams for
`train` (the micro model's training data), `easy` and `hard` (held out for evaluation) and
`tour` (candidates for the app's tour videos: they are picked by what SAM2 and LIT do on them,
so they are never evaluation data).

What a scene holds (all layers move; GT = the visible part of each tracked object):
- a textured background (gratings, checks, spots or smooth noise) seen through a panning camera;
- 1-3 tracked objects of many shapes: blobs, stars (concave), rings (a hole), crescents,
  crosses, and articulated figures whose thin limbs swing; small to a third of the frame;
- appearances: stripes, checks, spots, plain, gradient, in random palettes, or camouflage
  (the background's own texture carried along);
- events: occluding bars and shapes in front, untracked look-alikes behind, objects that leave
  the frame and come back, and two-part objects (a "cap" of another appearance).

Two-part objects are what makes the `hard` split hard on purpose. In training, a cap of another
appearance is *part of the object* in half the videos and a separate untracked thing stuck to it
in the other half, so no generic model can know which from one frame: only the prompt mask, the
memory and, when those fade, the user's corrections say so. That is the kind of systematic,
repeated error LIT exists for: a decoder adapted to this one video can learn "the cap is part of
it". The other hard events are of the same kind: a near-twin distractor that differs from the
object in one fixed attribute (its hue), and camouflage on one particular background texture.
An *identical* look-alike is left out of `hard` on purpose: nothing in the object's appearance
tells them apart, so no decoder update can fix it.

The `tour` split shows one event per video, named in the app: a hue-shifted look-alike crossing,
an occlusion, and an appearance change (the object's colours and pattern switch mid-video, as a
turned-over card or a light coming on; the model's memory then holds the old look). It was added
after the micro model was trained; `train`, `easy` and `hard` draw exactly what they drew before.
"""
from __future__ import annotations

import colorsys
import copy
from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from .base import DatasetError, VideoSample

SPLIT_CODE = {"train": 0, "easy": 1, "hard": 2, "tour": 3}
HARD_EVENTS = ("composite", "twin", "camouflage")  # hard video i has event i % 3
TOUR_EVENTS = ("lookalike", "occlusion", "appearance")  # tour video i has event i % 3
PAN = 20  # pixels of background beyond each side, so the camera can pan


@dataclass
class Look:
    """How a sprite is painted: a pattern in two colours, in the sprite's own coordinates."""
    pattern: str             # stripes | checks | spots | plain | gradient | camouflage
    colour: np.ndarray       # (3,) 0..255
    colour2: np.ndarray      # (3,) 0..255, the pattern's second colour
    period: float            # pattern period in pixels
    angle: float             # pattern orientation
    anchor: tuple = (0.0, 0.0)  # camouflage: where on the background canvas the texture is taken


@dataclass
class Sprite:
    """One moving shape; `tracked` sprites have ground truth, the others are distractors/occluders."""
    shape: str               # blob | star | ring | crescent | cross | figure | bar
    look: Look
    size: float              # radius in pixels
    x0: float
    y0: float
    vx: float
    vy: float
    spin: float              # radians per frame
    params: np.ndarray       # shape-specific random numbers in [0, 1)
    tracked: bool = True
    wrap: bool = False       # leaves the frame and comes back (else bounces off the edges)
    cap: Optional["Sprite"] = None   # a second part of another appearance, stuck to this sprite
    cap_in_gt: bool = True   # whether the cap belongs to the object's ground truth
    cap_angle: float = 0.0
    look_after: Optional[Look] = None  # the look from frame `change_frame` on (an appearance change)
    change_frame: int = 0


@dataclass
class Scene:
    height: int
    width: int
    canvas: np.ndarray                # (H + 2 PAN, W + 2 PAN, 3) float background
    pan: np.ndarray                   # (2,) total camera shift over the video (x, y)
    behind: list = field(default_factory=list)    # distractors, drawn under the objects
    objects: list = field(default_factory=list)   # tracked, drawn in order
    front: list = field(default_factory=list)     # occluders, drawn over everything
    noise: float = 3.0


def make_procedural_video(split: str, index: int, num_frames: int = 32, height: int = 128,
                          width: int = 128, difficulty: float = 1.0) -> VideoSample:
    """Video `index` of `split` (train / easy / hard / tour); deterministic, every frame annotated.

    `difficulty` < 1 (train only, a curriculum) draws an easy-like scene with probability
    1 - difficulty: motion and occlusion only, so a model from scratch learns to track first.
    """
    if split not in SPLIT_CODE:
        raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLIT_CODE)}.")
    if index < 0 or num_frames < 1 or min(height, width) < 64:
        raise DatasetError(f"need index >= 0, num_frames >= 1 and a frame of at least 64x64 "
                           f"(got {index}, {num_frames}, {height}x{width}).")
    rng = _video_rng(split, index)
    make_scene = {"train": _train_scene, "easy": _easy_scene, "hard": _hard_scene, "tour": _tour_scene}[split]
    if split == "train" and rng.uniform() >= difficulty:
        make_scene = _easy_scene
    scene = make_scene(rng, index, height, width)
    frames, gt = render(scene, num_frames, rng)
    return VideoSample(name=f"{split}-{index}", frames=frames, gt=gt, fps=24.0)


def _video_rng(split: str, index: int) -> np.random.Generator:
    """The one random stream video `index` of `split` is drawn from: disjoint across splits."""
    return np.random.default_rng(np.random.SeedSequence([SPLIT_CODE[split], int(index)]))


# --- the three distributions -----------------------------------------------------------------

def _train_scene(rng, index, height, width) -> Scene:
    scene = Scene(height, width, *_background(rng, height, width, rng.choice(BACKGROUNDS)))
    for _ in range(rng.integers(1, 4)):
        obj = _sprite(rng, scene, size=rng.uniform(0.06, 0.33) * min(height, width))
        if rng.uniform() < 0.15:
            obj.look = _camouflage(rng, scene)
        if rng.uniform() < 0.4:
            _add_cap(rng, obj, in_gt=rng.uniform() < 0.5)
        obj.wrap = rng.uniform() < 0.15
        scene.objects.append(obj)
    for _ in range(rng.integers(0, 3)):
        model = scene.objects[rng.integers(len(scene.objects))]
        twin = rng.uniform() < 0.4
        scene.behind.append(_twin(rng, scene, model, rng.uniform(0.1, 0.5)) if twin else
                            _sprite(rng, scene, size=rng.uniform(0.06, 0.25) * min(height, width), tracked=False))
    if rng.uniform() < 0.5:
        scene.front.append(_occluder(rng, scene))
    return scene


def _easy_scene(rng, index, height, width) -> Scene:
    """Motion and occlusion only: 1-2 objects of every shape, distinct looks, no traps."""
    scene = Scene(height, width, *_background(rng, height, width, rng.choice(BACKGROUNDS)))
    for _ in range(rng.integers(1, 3)):
        scene.objects.append(_sprite(rng, scene, size=rng.uniform(0.12, 0.28) * min(height, width)))
    scene.front.append(_occluder(rng, scene))
    return scene


def _hard_scene(rng, index, height, width) -> Scene:
    """One object (obj 1) with one systematic trap, chosen by index (see HARD_EVENTS)."""
    event = HARD_EVENTS[index % len(HARD_EVENTS)]
    background = "gratings" if event == "camouflage" else rng.choice(BACKGROUNDS)
    scene = Scene(height, width, *_background(rng, height, width, background))
    obj = _sprite(rng, scene, size=rng.uniform(0.14, 0.26) * min(height, width))
    if event == "composite":
        _add_cap(rng, obj, in_gt=True)
    elif event == "camouflage":
        obj.look = _camouflage(rng, scene)
    else:  # a near-twin: same shape, size and pattern, hue turned by a fixed 0.12
        scene.behind.append(_twin(rng, scene, obj, 0.12))
    scene.objects.append(obj)
    return scene


def _tour_scene(rng, index, height, width) -> Scene:
    """One object (obj 1) and one event the app's tour names (see TOUR_EVENTS)."""
    event = TOUR_EVENTS[index % len(TOUR_EVENTS)]
    scene = Scene(height, width, *_background(rng, height, width, rng.choice(BACKGROUNDS)))
    obj = _sprite(rng, scene, size=rng.uniform(0.16, 0.26) * min(height, width))
    if event == "lookalike":
        scene.behind.append(_twin(rng, scene, obj, 0.12))
    elif event == "occlusion":
        occ = _occluder(rng, scene)
        occ.size = max(occ.size, 0.16 * min(height, width))  # big enough to hide most of the object
        occ.x0, occ.y0 = width - obj.x0, height - obj.y0     # comes from the far side: it crosses the object
        occ.vx, occ.vy = -obj.vx * 1.5, -obj.vy * 1.5
        scene.front.append(occ)
    else:  # appearance: another hue (turned by a third to a half) and another pattern from frame 8-15 on
        after = _look(rng)
        hue = colorsys.rgb_to_hsv(*(np.clip(obj.look.colour, 1, 255) / 255))[0]
        after.colour = _colour(rng, hue=hue + rng.uniform(0.33, 0.5))
        after.colour2 = after.colour * rng.uniform(0.45, 0.8)
        after.pattern = str(rng.choice([p for p in PATTERNS if p != obj.look.pattern]))
        obj.look_after, obj.change_frame = after, int(rng.integers(8, 16))
    scene.objects.append(obj)
    return scene


def tour_event_frames(index: int, num_frames: int = 32) -> int:
    """On how many frames of tour video `index` its event can be seen: the look-alike within 3 px of
    the object, the occluder hiding more than a fifth of it, or the object in its new look. A tour
    sample must show the event it is named after (benchmarks/select_tour_samples.py)."""
    scene = _tour_scene(_video_rng("tour", index), index, 128, 128)
    obj = scene.objects[0]
    if obj.look_after is not None:
        return max(num_frames - obj.change_frame, 0)

    def masks(sc: Scene) -> dict:  # object 1's masks; the generator only draws pixel noise here
        return render(sc, num_frames, np.random.default_rng(0))[1][1]

    seen = masks(scene)
    if scene.front:  # occlusion: the object with and without what passes in front of it
        bare = copy.deepcopy(scene)
        bare.front = []
        whole = masks(bare)
        return int(sum(seen[t].sum() < 0.8 * whole[t].sum() for t in range(num_frames)))
    twin_only = copy.deepcopy(scene)
    twin_only.objects, twin_only.behind = [twin_only.behind[0]], []
    twin = masks(twin_only)
    near = np.ones((7, 7), np.uint8)
    return sum(bool((cv2.dilate(seen[t].astype(np.uint8), near) & twin[t]).any()) for t in range(num_frames))


# --- building blocks -------------------------------------------------------------------------

SHAPES = ("blob", "star", "ring", "crescent", "cross", "figure")
PATTERNS = ("stripes", "checks", "spots", "plain", "gradient")
BACKGROUNDS = ("gratings", "checks", "spots", "smooth")


def _colour(rng, hue=None, sat=None, val=None) -> np.ndarray:
    hue = rng.uniform() if hue is None else hue % 1.0
    sat = rng.uniform(0.45, 0.95) if sat is None else sat
    val = rng.uniform(0.5, 0.95) if val is None else val
    return np.array(colorsys.hsv_to_rgb(hue, sat, val)) * 255


def _look(rng) -> Look:
    colour = _colour(rng)
    return Look(pattern=str(rng.choice(PATTERNS)), colour=colour, colour2=colour * rng.uniform(0.45, 0.8),
                period=rng.uniform(4, 12), angle=rng.uniform(0, np.pi))


def _camouflage(rng, scene: Scene) -> Look:
    h, w = scene.canvas.shape[:2]
    return Look("camouflage", np.zeros(3), np.zeros(3), 1.0, 0.0,
                anchor=(rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w))


def _sprite(rng, scene: Scene, size: float, tracked: bool = True) -> Sprite:
    speed = rng.uniform(0.4, 3.5)
    heading = rng.uniform(0, 2 * np.pi)
    margin = size
    return Sprite(shape=str(rng.choice(SHAPES)), look=_look(rng), size=size,
                  x0=rng.uniform(margin, scene.width - margin), y0=rng.uniform(margin, scene.height - margin),
                  vx=speed * np.cos(heading), vy=speed * np.sin(heading), spin=rng.uniform(-0.08, 0.08),
                  params=rng.uniform(size=8), tracked=tracked)


def _add_cap(rng, obj: Sprite, in_gt: bool) -> None:
    """A disk of another appearance stuck to the outline (a head, a bag, a card held)."""
    cap_look = _look(rng)
    cap_look.colour = _colour(rng, hue=rng.uniform() if obj.look.pattern == "camouflage"
                              else colorsys.rgb_to_hsv(*(obj.look.colour / 255))[0] + rng.uniform(0.3, 0.7))
    cap_look.colour2 = cap_look.colour * 0.6
    obj.cap = Sprite("blob", cap_look, obj.size * rng.uniform(0.45, 0.7), 0, 0, 0, 0, 0.0,
                     rng.uniform(size=8), tracked=False)
    obj.cap_in_gt, obj.cap_angle = in_gt, rng.uniform(0, 2 * np.pi)


def _twin(rng, scene: Scene, model: Sprite, hue_shift: float) -> Sprite:
    """An untracked copy of `model` (shape, size, pattern) whose hue differs by `hue_shift`."""
    twin = _sprite(rng, scene, model.size, tracked=False)
    twin.shape, twin.params = model.shape, model.params
    look = model.look
    hue, sat, val = colorsys.rgb_to_hsv(*(np.clip(look.colour, 1, 255) / 255))
    sign = rng.choice([-1, 1])
    colour = _colour(rng, hue=hue + sign * hue_shift, sat=max(sat, 0.45), val=max(val, 0.5))
    twin.look = Look("plain" if look.pattern == "camouflage" else look.pattern, colour,
                     colour * (np.mean(look.colour2) / max(np.mean(look.colour), 1)), look.period, look.angle)
    # start on the far side of the frame, heading towards the object: their paths cross
    twin.x0, twin.y0 = scene.width - model.x0, scene.height - model.y0
    twin.vx, twin.vy = -model.vx * rng.uniform(0.8, 1.2), -model.vy * rng.uniform(0.8, 1.2)
    return twin


def _occluder(rng, scene: Scene) -> Sprite:
    """A bar or a blob that passes in front; never tracked."""
    size = rng.uniform(0.08, 0.2) * min(scene.height, scene.width)
    occ = _sprite(rng, scene, size, tracked=False)
    occ.shape = "bar" if rng.uniform() < 0.6 else "blob"
    occ.look.colour = rng.uniform(30, 200, size=3)
    occ.look.colour2 = occ.look.colour * 0.8
    return occ


def _background(rng, height: int, width: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(canvas, pan): a (H + 2 PAN, W + 2 PAN, 3) float texture and the camera's total shift."""
    h, w = height + 2 * PAN, width + 2 * PAN
    base = _colour(rng, sat=rng.uniform(0.2, 0.6), val=rng.uniform(0.35, 0.75))
    coarse = rng.normal(0, 1, size=(h // 16 + 2, w // 16 + 2, 3)).astype(np.float32)
    canvas = base + cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC) * 20
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "gratings":
        for _ in range(2):
            a, period = rng.uniform(0, np.pi), rng.uniform(5, 14)
            canvas += 18 * np.sin((xx * np.cos(a) + yy * np.sin(a)) * 2 * np.pi / period)[..., None]
    elif kind == "checks":
        period = rng.uniform(6, 16)
        canvas += 20 * np.sign(np.sin(xx * np.pi / period) * np.sin(yy * np.pi / period))[..., None]
    elif kind == "spots":
        period = rng.uniform(6, 14)
        canvas += 25 * (np.sin(xx * 2 * np.pi / period) * np.sin(yy * 2 * np.pi / period) > 0.5)[..., None]
    grain = cv2.GaussianBlur(rng.normal(0, 8, size=(h, w, 3)).astype(np.float32), (3, 3), 0)
    pan = rng.uniform(-1, 1, size=2) * PAN * 0.9 * (rng.uniform() < 0.7)
    return canvas + grain, pan


# --- rendering -------------------------------------------------------------------------------

def render(scene: Scene, num_frames: int, rng) -> tuple[np.ndarray, dict]:
    """Frames (T, H, W, 3) uint8 and GT {obj_id: {t: (H, W) bool}} of a scene."""
    H, W = scene.height, scene.width
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    frames = np.empty((num_frames, H, W, 3), np.uint8)
    gt = {k + 1: {} for k in range(len(scene.objects))}
    for t in range(num_frames):
        shift = np.round(scene.pan * t / max(num_frames - 1, 1)).astype(int)
        oy, ox = PAN + shift[1], PAN + shift[0]
        image = scene.canvas[oy:oy + H, ox:ox + W].copy()
        for sprite in scene.behind:
            _draw(image, sprite, t, xx, yy, scene)
        owner = np.zeros((H, W), np.int32)  # which tracked object owns each pixel (0: none)
        for k, sprite in enumerate(scene.objects):
            body, cap = _draw(image, sprite, t, xx, yy, scene)
            owner[body | (cap if sprite.cap_in_gt else False)] = k + 1
            if not sprite.cap_in_gt:
                owner[cap] = 0  # an untracked cap hides whatever object was beneath it
        for sprite in scene.front:
            body, _ = _draw(image, sprite, t, xx, yy, scene)
            owner[body] = 0
        for k in range(len(scene.objects)):
            gt[k + 1][t] = owner == k + 1
        image += rng.normal(0.0, scene.noise, size=image.shape)
        frames[t] = np.clip(image, 0, 255).round().astype(np.uint8)
    return frames, gt


def _position(s: Sprite, t: float, W: int, H: int) -> tuple[float, float]:
    if s.wrap:  # out of one side and back in: a wide horizontal swing
        x = W / 2 + (W / 2 + 1.6 * s.size) * np.sin(s.x0 / W * 2 * np.pi + t * abs(s.vx) / W * 2.0)
        y = s.y0 + s.vy * t * 0.3
        return x, float(np.clip(y, s.size, H - s.size))
    return _bounce(s.x0 + s.vx * t, s.size * 0.6, W - s.size * 0.6), _bounce(s.y0 + s.vy * t, s.size * 0.6,
                                                                          H - s.size * 0.6)


def _bounce(u: float, lo: float, hi: float) -> float:
    span = max(hi - lo, 1e-3)
    v = (u - lo) % (2 * span)
    return lo + (v if v <= span else 2 * span - v)


def _draw(image, s: Sprite, t: int, xx, yy, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Paint sprite (and its cap) at time t; return the (H, W) footprints of body and cap."""
    cx, cy = _position(s, t, scene.width, scene.height)
    angle = s.spin * t
    body = _inside(s, t, (xx - cx) / s.size, (yy - cy) / s.size, angle)
    look = s.look_after if s.look_after is not None and t >= s.change_frame else s.look
    _paint(image, look, body, xx - cx, yy - cy, angle, scene)
    cap = np.zeros_like(body)
    if s.cap is not None:
        a = s.cap_angle + angle
        ccx, ccy = cx + 0.95 * s.size * np.cos(a), cy + 0.95 * s.size * np.sin(a)
        cap = _inside(s.cap, t, (xx - ccx) / s.cap.size, (yy - ccy) / s.cap.size, angle)
        _paint(image, s.cap.look, cap, xx - ccx, yy - ccy, angle, scene)
        body = body & ~cap
    return body, cap


def _inside(s: Sprite, t: int, u: np.ndarray, v: np.ndarray, angle: float) -> np.ndarray:
    """The shape's footprint in units of its radius (u, v: pixel offsets / size), rotated by angle."""
    c, sn = np.cos(-angle), np.sin(-angle)
    u, v = u * c - v * sn, u * sn + v * c
    r, theta = np.hypot(u, v), np.arctan2(v, u)
    p = s.params
    if s.shape == "blob":
        wobble = 0.6 * np.sin(2 * theta + 6 * p[0] + 0.12 * t) + 0.4 * np.sin(3 * theta + 6 * p[1] - 0.1 * t)
        return r <= 1 + 0.22 * wobble
    if s.shape == "star":
        points = 3 + int(p[0] * 4)
        return r <= 0.75 + (0.2 + 0.2 * p[1]) * np.cos(points * theta)
    if s.shape == "ring":
        return (r <= 1) & (r >= 0.4 + 0.25 * p[0])
    if s.shape == "crescent":
        return (r <= 1) & (np.hypot(u - 0.45 - 0.3 * p[0], v) >= 0.75)
    if s.shape == "cross":
        arm = 0.22 + 0.15 * p[0]
        return ((np.abs(u) <= 1) & (np.abs(v) <= arm)) | ((np.abs(v) <= 1) & (np.abs(u) <= arm) & (v <= 0.4 + p[1]))
    if s.shape == "bar":
        return (np.abs(u) <= 0.35) & (np.abs(v) <= 6.0)
    # figure: an elliptic body with 2-4 thin limbs swinging at the joints
    inside = (u / 0.7) ** 2 + (v / 0.4) ** 2 <= 1
    for j in range(2 + int(p[0] * 3)):
        base = 2 * np.pi * (j + 0.5 * p[1]) / (2 + int(p[0] * 3))
        joint = np.array([0.6 * np.cos(base), 0.35 * np.sin(base)])
        swing = base + 0.6 * np.sin(0.25 * t + 6 * p[2 + j % 6])
        du, dv = u - joint[0], v - joint[1]
        along = du * np.cos(swing) + dv * np.sin(swing)
        across = -du * np.sin(swing) + dv * np.cos(swing)
        inside |= (along >= 0) & (along <= 0.75) & (np.abs(across) <= 0.09 + 0.04 * p[3])
    return inside


def _paint(image, look: Look, inside: np.ndarray, dx: np.ndarray, dy: np.ndarray, angle: float,
           scene: Scene) -> None:
    if not inside.any():
        return
    dx, dy = dx[inside], dy[inside]
    if look.pattern == "camouflage":  # the background texture around a fixed anchor, carried along
        ys = np.clip((dy + look.anchor[0]).astype(int), 0, scene.canvas.shape[0] - 1)
        xs = np.clip((dx + look.anchor[1]).astype(int), 0, scene.canvas.shape[1] - 1)
        image[inside] = scene.canvas[ys, xs] + 10
        return
    a = look.angle + angle  # patterns turn with the sprite
    along = dx * np.cos(a) + dy * np.sin(a)
    across = -dx * np.sin(a) + dy * np.cos(a)
    k = 2 * np.pi / look.period
    if look.pattern == "stripes":
        w = 0.5 + 0.5 * np.sin(along * k)
    elif look.pattern == "checks":
        w = (np.sin(along * k / 2) * np.sin(across * k / 2) > 0).astype(np.float32)
    elif look.pattern == "spots":
        w = (np.sin(along * k) * np.sin(across * k) > 0.4).astype(np.float32)
    elif look.pattern == "gradient":
        w = np.clip(0.5 + along / (4 * look.period), 0, 1)
    else:
        w = np.zeros_like(along)
    image[inside] = look.colour * (1 - w[:, None]) + look.colour2 * w[:, None]
