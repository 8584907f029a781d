"""Synthetic object scenes for the PASCAL VOC 2012 segmentation and detection formats.

Each image is a cluttered indoor / outdoor / abstract backdrop with 1-3 objects of the 20 VOC
classes, each with its own colours, texture and silhouette; bigger objects stand behind smaller
ones, which stay mostly visible. As in real VOC, a void (255) band of about 2 px runs along every
object outline. One object of image ``index`` has class ``1 + index % 20``, so every class occurs
in any split of >= 20 images.

Each object also gets a detection box: the tight box of its visible pixels after occlusion (void
band included), in VOC's 1-based inclusive pixel coordinates; ``truncated`` is 1 where the frame
cuts the object. Remnants with fewer than ``MIN_PIXELS`` non-void pixels get no box.
``files.generate_voc`` writes the scenes to disk.
"""
from __future__ import annotations

import cv2
import numpy as np

from . import painter as P
from .objects import (aeroplane, bicycle, bird, boat, bottle, bus, car, cat, chair, cow, diningtable,
                      dog, horse, motorbike, person, pottedplant, sheep, sofa, train, tvmonitor)

VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
               'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
               'sheep', 'sofa', 'train', 'tvmonitor')
IGNORE = 255
MIN_PIXELS = 16  # smaller visible remnants get no box (as COCO's MIN_AREA)


def _train(rng, size):
    """The shared side-view train, longer than the frame as trains usually are in VOC photos."""
    return train(rng, 1.5 * size)


# Class index -> sprite factory ``f(rng, longest_side_px)``.
MAKERS = {1: aeroplane, 2: bicycle, 3: bird, 4: boat, 5: bottle, 6: bus, 7: car, 8: cat, 9: chair,
          10: cow, 11: diningtable, 12: dog, 13: horse, 14: motorbike, 15: person, 16: pottedplant,
          17: sheep, 18: sofa, 19: _train, 20: tvmonitor}


def render_scene(rng, index, h, w):
    """One image: returns (RGB uint8 image, uint8 class map with 255 object borders, objects).

    ``objects`` is ``[(class, (xmin, ymin, xmax, ymax), truncated), ...]`` (VOC's 1-based inclusive
    box), in painting order. It is derived from the instance map, without drawing random numbers.
    """
    c = P.cluttered_background(rng, h, w)
    n = 1 + int(rng.random() < 0.55) + int(rng.random() < 0.25)
    classes = [1 + index % 20] + [int(k) for k in rng.integers(1, 21, n - 1)]
    sprites = []
    for cls in classes:
        frac = rng.uniform(0.55, 0.95) if n == 1 else rng.uniform(0.4, 0.7)
        sprite = MAKERS[cls](rng, frac * min(h, w))
        if rng.random() < 0.5:
            sprite.flip()
        sprites.append((cls, sprite))
    sprites.sort(key=lambda cs: -cs[1].h * cs[1].w)  # big things behind, small ones stay visible
    boxes, truncated = [], []
    for k, (cls, sprite) in enumerate(sprites, start=1):
        spot = P.free_spot(rng, sprite.w, sprite.h, h, w, boxes, outside=0.1, cover=0.4)
        if spot is None:  # crowded: still draw it (on top), accepting more occlusion
            spot = P.free_spot(rng, sprite.w, sprite.h, h, w, [], outside=0.1)
        drawn = c.paste(sprite, *spot, cls, inst=k)
        truncated.append(drawn < np.count_nonzero(sprite.mask))  # the frame cut part of it off
    img = c.finish(rng)
    # VOC's void band along object outlines: where the 3x3 neighbourhood holds another instance.
    inst = c.inst.astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    border = cv2.dilate(inst, kernel) != cv2.erode(inst, kernel)
    lbl = c.lbl.copy()
    lbl[border] = IGNORE
    objects = []
    for k, ((cls, _), cut) in enumerate(zip(sprites, truncated), start=1):
        visible = c.inst == k
        # counted without the void band, so every box holds pixels of its class in the label map
        if np.count_nonzero(visible & ~border) >= MIN_PIXELS:
            objects.append((cls, voc_box(visible), cut))
    return img, lbl, objects


def voc_box(mask):
    """Tight box of a boolean mask as VOC writes it: 1-based, inclusive (xmin, ymin, xmax, ymax)."""
    x, y, bw, bh = cv2.boundingRect(mask.view(np.uint8))
    return x + 1, y + 1, x + bw, y + bh
