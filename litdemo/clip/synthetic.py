"""A synthetic fine-grained image set, drawn procedurally from a seed: no download.

Every class is a "bird" with the same body plan: an ellipse body with a head, on a noisy
background. Classes differ only in details, as in CUB: body colour, the colour of a small
accent mark, and where the mark sits (crown, throat or tail). Pairs of classes share all but
one of these, so the set is fine-grained by construction. Pose, size, position, background
and noise vary per image. Same (seed, class, index) -> same pixels, on any machine.
"""
from __future__ import annotations

import itertools
from typing import Optional

import numpy as np
from PIL import Image

from .datasets import ClipDataset

BODY_COLORS = {"azure": (60, 110, 200), "ochre": (205, 150, 50), "olive": (110, 135, 45),
               "slate": (95, 95, 120), "rose": (210, 120, 150)}
ACCENT_COLORS = {"crimson": (215, 30, 40), "white": (245, 245, 245), "black": (15, 15, 15),
                 "yellow": (250, 220, 30)}
ACCENT_PLACES = {"crowned": (-0.55, -0.55), "throated": (-0.55, 0.15), "tailed": (0.85, 0.0)}  # body coords


class SyntheticFineGrained(ClipDataset):
    def __init__(self, num_classes: int = 8, images_per_class: int = 20, image_size: int = 64, seed: int = 0):
        combos = list(itertools.product(BODY_COLORS, ACCENT_COLORS, ACCENT_PLACES))
        if not 2 <= num_classes <= len(combos):
            raise ValueError(f"num_classes={num_classes} must be in [2, {len(combos)}] (body x accent x place).")
        if images_per_class < 1 or image_size < 16:
            raise ValueError(f"images_per_class={images_per_class} must be >= 1 and image_size={image_size} >= 16.")
        rng = np.random.default_rng(seed)
        # Sort a seeded shuffle by body colour so classes come in look-alike families.
        picked = sorted((combos[i] for i in rng.permutation(len(combos))[:num_classes]), key=lambda c: c[0])
        self.attributes = picked                             # (body, accent colour, accent place)
        names = [f"{accent}-{place} {body} bird" for body, accent, place in picked]
        labels = [c for c in range(num_classes) for _ in range(images_per_class)]
        super().__init__(name=f"synthetic-{num_classes}c-seed{seed}", class_names=names, labels=labels,
                         templates=("a photo of a {}.",))
        self.images_per_class = images_per_class
        self.image_size = image_size
        self.seed = seed

    def image_id(self, index: int) -> str:
        return f"synthetic-{self.seed}-{index:05d}"

    def image(self, index: int) -> Image.Image:
        label = self.labels[index]
        rng = np.random.default_rng([self.seed, label, index])
        return Image.fromarray(draw_bird(self.attributes[label], self.image_size, rng))


def draw_bird(attributes: tuple[str, str, str], size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size, 3) uint8 picture of a bird with the given (body, accent, place)."""
    body, accent, place = attributes
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size            # (S, S) each, in [0, 1)
    background = rng.uniform(150, 235, size=3)
    tilt = rng.uniform(-40, 40, size=3)
    img = background + tilt * (yy[..., None] - 0.5)                        # (S, S, 3) soft gradient

    cx, cy = rng.uniform(0.38, 0.62, size=2)
    rx, ry = rng.uniform(0.22, 0.3), rng.uniform(0.13, 0.18)               # body half-axes
    angle = rng.uniform(-0.35, 0.35)
    cos, sin = np.cos(angle), np.sin(angle)
    u = ((xx - cx) * cos + (yy - cy) * sin) / rx                           # body coordinates:
    v = (-(xx - cx) * sin + (yy - cy) * cos) / ry                          # the body is u^2 + v^2 <= 1

    def disc(bu: float, bv: float, radius: float) -> np.ndarray:
        """(S, S) bool: a round spot centred at body coords (bu, bv), radius in image units."""
        return ((u - bu) * rx) ** 2 + ((v - bv) * ry) ** 2 <= radius ** 2

    color = np.clip(np.array(BODY_COLORS[body]) * rng.uniform(0.85, 1.15), 0, 255)
    img[(u ** 2 + v ** 2 <= 1) | disc(-0.95, -0.75, 0.6 * ry)] = color    # body and head
    au, av = ACCENT_PLACES[place]
    img[disc(au + rng.uniform(-0.08, 0.08), av + rng.uniform(-0.08, 0.08), rng.uniform(0.3, 0.4) * ry)] = \
        ACCENT_COLORS[accent]                                              # the one detail that matters
    img += rng.normal(0, 6, size=img.shape)                                # sensor noise
    return np.clip(img, 0, 255).astype(np.uint8)


def near_duplicate(image: Image.Image, rng: Optional[np.random.Generator] = None, shift: int = 1,
                   noise: float = 4.0) -> Image.Image:
    """The same picture shifted by `shift` pixels with fresh noise: what a burst of photos gives."""
    rng = rng or np.random.default_rng(0)
    arr = np.asarray(image, dtype=np.float32)
    arr = np.roll(arr, shift=(shift, shift), axis=(0, 1)) + rng.normal(0, noise, size=arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
