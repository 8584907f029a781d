"""Synthetic detection scenes written in the COCO instances format (6 real COCO categories).

Each image is a cluttered backdrop with 2-6 objects (person, car, stop sign, dog, bottle, clock)
placed so that any object stays mostly visible. Annotations describe what is visible after
occlusion: ``segmentation`` is the outline polygon(s) of the visible mask, ``bbox`` its box and
``area`` its pixel count. The first object of image ``index`` cycles through the categories.

Layout on disk (what ``mmdet.datasets.CocoDataset`` reads)::

    annotations/instances_{train,val}2017.json
    {train,val}2017/{image_id:012d}.jpg    RGB, JPEG quality 95
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from . import painter as P

# Real COCO category ids and names, in id order (= mmdet label order for ``COCO_CLASSES``).
CATEGORIES = ((1, 'person', 'person'), (3, 'car', 'vehicle'), (13, 'stop sign', 'outdoor'),
              (18, 'dog', 'animal'), (44, 'bottle', 'kitchen'), (85, 'clock', 'indoor'))
COCO_CLASSES = tuple(name for _, name, _ in CATEGORIES)
SPLIT_IDS = {'train': 0, 'val': 1}
ID_OFFSET = {'train': 0, 'val': 1_000_000}  # image ids are unique across splits, as in COCO
DATASET_ID = 3
OUTPUTS = ('annotations', 'train2017', 'val2017')
MIN_AREA = 16  # smaller visible remnants are not annotated (and are rare by placement)


def stop_sign(rng, size):
    """Red octagon with a white border and a white word-like band of letters."""
    d = float(size)
    s = P.Sprite(d, d)
    c = (d - 1) / 2
    octagon = [(c + c * np.cos(a), c + c * np.sin(a)) for a in np.pi / 8 + np.arange(8) * np.pi / 4]
    s.fill(s.poly(octagon), (240, 240, 240))
    inner = [(c + 0.86 * c * np.cos(a), c + 0.86 * c * np.sin(a))
             for a in np.pi / 8 + np.arange(8) * np.pi / 4]
    s.fill(s.poly(inner), P.colour(rng, (200, 30, 35), 0.12, 5), P.noise(rng, s.h, s.w, 2), 0.05)
    for i in range(4):  # four letter blocks with gaps
        x0 = c - 0.62 * c + i * 0.32 * c
        s.fill(s.rect(x0, c - 0.22 * c, x0 + 0.24 * c, c + 0.22 * c), (245, 245, 245))
        s.fill(s.rect(x0 + 0.08 * c, c - 0.08 * c, x0 + 0.16 * c, c + 0.08 * c),
               P.colour(rng, (200, 30, 35), 0.1))
    return s


def clock(rng, size):
    """Wall clock: coloured rim, light face with twelve ticks, two hands and a centre pin."""
    d = float(size)
    s = P.Sprite(d, d)
    c = (d - 1) / 2
    rim = P.colour(rng, P.pick(rng, ((30, 30, 30), (120, 75, 40), (190, 160, 70), (180, 40, 40))))
    s.fill(s.circle(c, c, c), rim, P.vgrad(s.h, s.w, 0.3, -0.3), 0.3)
    s.fill(s.circle(c, c, 0.85 * c), P.colour(rng, (240, 236, 225), 0.05), P.vgrad(s.h, s.w, -0.1, 0.1),
           0.5)
    for k in range(12):
        a = k * np.pi / 6
        p0 = (c + 0.7 * c * np.cos(a), c + 0.7 * c * np.sin(a))
        p1 = (c + 0.8 * c * np.cos(a), c + 0.8 * c * np.sin(a))
        s.fill(s.line(p0, p1, max(0.06 * c, 1)), (30, 30, 30))
    for length, width in ((0.45, 0.1), (0.65, 0.06)):
        a = rng.uniform(0, 2 * np.pi)
        s.fill(s.line((c, c), (c + length * c * np.cos(a), c + length * c * np.sin(a)),
                      max(width * c, 1)), (20, 20, 20))
    s.fill(s.circle(c, c, max(0.07 * c, 1)), (200, 40, 40))
    return s


MAKERS = (P.person, P.car, stop_sign, P.dog, P.bottle, clock)  # in COCO_CLASSES order


def _annotation(mask, ann_id, image_id, category_id):
    """COCO annotation of one visible mask: outline polygons, box and pixel area.

    Contours are traced on the 2x upsampled mask, so vertices lie a quarter pixel inside the
    pixel edges: thin parts (limbs, posts) keep their width when the polygon is rasterised.
    """
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0:
        return None
    crop = np.ascontiguousarray(mask[y:y + h, x:x + w]).view(np.uint8)
    up = cv2.resize(crop, (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(up, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = [(c.reshape(-1, 2) / 2 + (x + 0.25, y + 0.25)).reshape(-1).round(2).tolist()
             for c in contours if len(c) >= 3]
    if not polys:
        return None
    return dict(id=ann_id, image_id=image_id, category_id=category_id, segmentation=polys,
                area=float(np.count_nonzero(crop)), bbox=[float(x), float(y), float(w), float(h)],
                iscrowd=0)


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
            post = P.Sprite(h, max(sprite.w * 0.08, 2))
            post.fill(post.rect(0, 0, post.w, post.h), (120, 120, 125), P.cylinder(post.h, post.w),
                      0.3)
            c.paste(post, x + (sprite.w - post.w) / 2, y + sprite.h / 2, 0)
        c.paste(sprite, x, y, cls + 1, inst=len(placed))
    img = c.finish(rng)
    return img, [(cls, c.inst == k) for k, cls in enumerate(placed, start=1)]


def generate_coco(root, num_train=400, num_val=60, size=(160, 192), seed=0, force=False):
    """Write a synthetic COCO-format detection dataset under ``root``; returns ``root`` as a Path.

    Deterministic in ``seed`` (each image has its own generator) and idempotent: a finished
    generation with the same parameters is reused unless ``force``.
    """
    h, w = P.check_args(num_train, num_val, size, seed)
    root = Path(root)
    params = dict(dataset='coco', num_train=int(num_train), num_val=int(num_val), size=[h, w],
                  seed=int(seed), version=1)
    if P.reuse_or_reset(root, params, OUTPUTS, force):
        return root
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    categories = [dict(id=i, name=n, supercategory=s) for i, n, s in CATEGORIES]
    for split, num in (('train', num_train), ('val', num_val)):
        images, annotations = [], []
        for i in range(num):
            image_id = ID_OFFSET[split] + i + 1
            img, objects = render_scene(P.image_rng(seed, DATASET_ID, SPLIT_IDS[split], i), i, h, w)
            file_name = f'{image_id:012d}.jpg'
            P.write_rgb(root / f'{split}2017' / file_name, img, jpeg_quality=95)
            images.append(dict(id=image_id, file_name=file_name, height=h, width=w))
            for k, (cls, mask) in enumerate(objects):
                if np.count_nonzero(mask) < MIN_AREA:
                    continue
                ann = _annotation(mask, image_id * 100 + k + 1, image_id, CATEGORIES[cls][0])
                if ann is not None:
                    annotations.append(ann)
        data = dict(info=dict(description=f'mmequi synthetic COCO-format {split} set', version='1.0',
                              year=2017),
                    licenses=[], images=images, annotations=annotations, categories=categories)
        (root / 'annotations' / f'instances_{split}2017.json').write_text(json.dumps(data))
    P.mark_complete(root, params)
    return root
