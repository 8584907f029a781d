"""Synthetic detection scenes for the COCO instances format (6 real COCO categories).

Each image is a cluttered backdrop with 2-6 objects (person, car, stop sign, dog, bottle, clock)
placed so that any object stays mostly visible. Annotations describe what is visible after
occlusion. The first object of image ``index`` cycles through the categories.
``files.generate_coco`` writes the scenes and their annotations to disk.
"""
from __future__ import annotations

from . import painter as P
from .objects import bottle, car, clock, dog, person, pole, stop_sign

# Real COCO category ids and names, in id order (= mmdet label order for ``COCO_CLASSES``).
CATEGORIES = ((1, 'person', 'person'), (3, 'car', 'vehicle'), (13, 'stop sign', 'outdoor'),
              (18, 'dog', 'animal'), (44, 'bottle', 'kitchen'), (85, 'clock', 'indoor'))
COCO_CLASSES = tuple(name for _, name, _ in CATEGORIES)
MAKERS = (person, car, stop_sign, dog, bottle, clock)  # in COCO_CLASSES order
MIN_AREA = 16  # smaller visible remnants are not annotated (and are rare by placement)


def render_scene(rng, index, h, w):
    """One image: returns (RGB uint8 image, [(category index, visible bool mask), ...])."""
    c = P.cluttered_background(rng, h, w)
    n = int(rng.integers(2, 7))
    classes = [index % len(MAKERS)] + [int(k) for k in rng.integers(0, len(MAKERS), n - 1)]
    boxes, placed = [], []
    for cls in classes:
        sprite = MAKERS[cls](rng, rng.uniform(0.18, 0.55) * min(h, w))
        if rng.random() < 0.5:
            sprite.flip()
        spot = P.free_spot(rng, sprite.w, sprite.h, h, w, boxes)
        if spot is None:  # no room left where everything stays mostly visible
            continue
        x, y = spot
        placed.append(cls)
        if cls == 2 and rng.random() < 0.5:  # stop signs stand on an (unlabelled) post
            post = pole(h, max(sprite.w * 0.08, 2), (120, 120, 125))
            c.paste(post, x + (sprite.w - post.w) / 2, y + sprite.h / 2, 0)
        c.paste(sprite, x, y, cls + 1, inst=len(placed))
    img = c.finish(rng)
    return img, [(cls, c.inst == k) for k, cls in enumerate(placed, start=1)]
