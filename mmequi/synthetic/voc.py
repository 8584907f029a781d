"""Synthetic object scenes written in the PASCAL VOC 2012 segmentation and detection formats.

Each image is a cluttered indoor / outdoor / abstract backdrop with 1-3 objects of the 20 VOC
classes, each with its own colours, texture and silhouette; bigger objects stand behind smaller
ones, which stay mostly visible. As in real VOC, a void (255) band of about 2 px runs along every
object outline. One object of image ``index`` has class ``1 + index % 20``, so every class occurs
in any split of >= 20 images.

Each object also gets a detection box: the tight box of its visible pixels after occlusion (void
band included), in VOC's 1-based inclusive pixel coordinates; ``truncated`` is 1 where the frame
cuts the object. Remnants with fewer than ``MIN_PIXELS`` non-void pixels get no box.

Layout on disk (what ``mmseg.datasets.PascalVOCDataset`` and ``mmdet.datasets.VOCDataset`` read)::

    JPEGImages/{name}.jpg                  RGB, JPEG quality 95
    SegmentationClass/{name}.png           palette ('P') PNG with the VOC colour map
    Annotations/{name}.xml                 VOC XML: <size>, one <object> with <bndbox> per object
    ImageSets/Segmentation/{train,val,trainval}.txt
    ImageSets/Main/{train,val,test}.txt    test = val (mmdet's VOC configs test on Main/test.txt)

For mmdet place (or link) the directory as ``VOCdevkit/VOC2007``. There is no ``Main/trainval.txt``:
mmdet's VOC0712 config trains on it, which here would include the test images.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from . import painter as P

VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
               'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
               'sheep', 'sofa', 'train', 'tvmonitor')
IGNORE = 255
SPLIT_IDS = {'train': 0, 'val': 1}
NAME_OFFSET = {'train': 0, 'val': 500_000}  # disjoint VOC-style names: 2012_000000, 2012_500000
DATASET_ID = 2
OUTPUTS = ('JPEGImages', 'SegmentationClass', 'Annotations', 'ImageSets')
MIN_PIXELS = 16  # smaller visible remnants get no box (as COCO's MIN_AREA)
GLASS = P.GLASS


def voc_palette():
    """The VOC colour map (bit-interleaved class index); index 255 is (224, 224, 192)."""
    pal = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, rgb = i, [0, 0, 0]
        for j in range(8):
            for ch in range(3):
                rgb[ch] |= ((c >> ch) & 1) << (7 - j)
            c >>= 3
        pal[i] = rgb
    return pal


# ---------------------------------------------------------------------------------- objects
def aeroplane(rng, size):
    """White airliner in side view: fuselage with windows, coloured tail, swept wings, engine."""
    w = float(size)
    h = 0.5 * w
    s = P.Sprite(h, w)
    body = P.colour(rng, (225, 228, 232), 0.08, 4)
    livery = P.colour(rng, P.pick(rng, ((200, 40, 40), (40, 70, 170), (240, 150, 30))), 0.1)
    shade = P.vgrad(s.h, s.w, 0.3, -0.3)
    s.fill(s.poly([(0.42 * w, 0.5 * h), (0.58 * w, 0.5 * h), (0.4 * w, 0.2 * h), (0.33 * w, 0.2 * h)]),
           body * 0.8, shade, 0.2)
    s.fill(s.poly([(0.02 * w, 0.04 * h), (0.11 * w, 0.04 * h), (0.22 * w, 0.52 * h),
                   (0.05 * w, 0.52 * h)]), livery)
    s.fill(s.ellipse(0.5 * w, 0.55 * h, 0.48 * w, 0.09 * w), body, shade, 0.25)
    s.fill(s.rect(0.1 * w, 0.6 * h, 0.9 * w, 0.63 * h), livery)
    s.fill(P.window_grid(s.h, s.w, 0.06 * h, 0.03 * w, 0.5, y0=0.52 * h - 0.03 * h)
           & s.rect(0.2 * w, 0.5 * h, 0.85 * w, 0.56 * h), GLASS)
    s.fill(s.poly([(0.9 * w, 0.5 * h), (0.96 * w, 0.5 * h), (0.98 * w, 0.54 * h), (0.9 * w, 0.54 * h)]),
           GLASS)
    s.fill(s.poly([(0.04 * w, 0.52 * h), (0.17 * w, 0.52 * h), (0.1 * w, 0.7 * h), (0.02 * w, 0.7 * h)]),
           body * 0.9)
    s.fill(s.poly([(0.4 * w, 0.6 * h), (0.6 * w, 0.6 * h), (0.42 * w, 0.98 * h), (0.34 * w, 0.98 * h)]),
           body * 0.95, shade, 0.2)
    s.fill(s.ellipse(0.5 * w, 0.78 * h, 0.07 * w, 0.035 * w), (150, 150, 155))
    return s


def bird(rng, size):
    """Perched bird: tilted body, darker feathered wing, round head, orange beak, thin legs."""
    w = float(size)
    h = 0.8 * w
    s = P.Sprite(h, w)
    plumage = P.colour(rng, P.pick(rng, ((130, 90, 50), (90, 110, 145), (45, 45, 50))), 0.12)
    beak = P.colour(rng, (235, 165, 35), 0.1)
    for dx in (-0.04, 0.04):
        s.fill(s.line(((0.45 + dx) * w, 0.7 * h), ((0.45 + dx) * w, h), max(0.03 * w, 1)), beak * 0.8)
    s.fill(s.poly([(0.25 * w, 0.5 * h), (0.0, 0.72 * h), (0.08 * w, 0.78 * h), (0.3 * w, 0.62 * h)]),
           plumage * 0.7)
    tex = P.stripes(s.h, s.w, max(0.05 * w, 2), 2.3) + 0.5 * P.noise(rng, s.h, s.w, 1)
    s.fill(s.ellipse(0.45 * w, 0.52 * h, 0.3 * w, 0.18 * w, angle=-20), plumage, tex, 0.12)
    s.fill(s.ellipse(0.55 * w, 0.6 * h, 0.16 * w, 0.1 * w, angle=-20),
           P.colour(rng, P.pick(rng, ((215, 110, 50), (225, 215, 195))), 0.1))
    s.fill(s.ellipse(0.38 * w, 0.48 * h, 0.2 * w, 0.1 * w, angle=-25), plumage * 0.6, tex, 0.3)
    s.fill(s.circle(0.72 * w, 0.28 * h, 0.12 * w), plumage, tex, 0.1)
    s.fill(s.poly([(0.8 * w, 0.22 * h), (0.99 * w, 0.3 * h), (0.8 * w, 0.34 * h)]), beak)
    s.fill(s.circle(0.75 * w, 0.25 * h, max(0.02 * w, 1)), (10, 10, 10))
    return s


def boat(rng, size):
    """Sailing boat (white sails on a mast) or motor boat (cabin with windows) on a painted hull."""
    w = float(size)
    h = 0.8 * w
    s = P.Sprite(h, w)
    hull = P.colour(rng, P.pick(rng, ((180, 40, 40), (30, 50, 110), (225, 225, 220), (140, 90, 50))))
    if rng.random() < 0.6:
        sail = P.colour(rng, (240, 235, 220), 0.05)
        seams = P.stripes(s.h, s.w, max(0.08 * h, 2), np.pi / 2, duty=0.1)
        s.fill(s.line((0.45 * w, 0.0), (0.45 * w, 0.66 * h), max(0.02 * w, 1)), (110, 80, 50))
        s.fill(s.poly([(0.47 * w, 0.04 * h), (0.47 * w, 0.62 * h), (0.88 * w, 0.62 * h)]), sail, seams,
               -0.1)
        s.fill(s.poly([(0.43 * w, 0.1 * h), (0.43 * w, 0.6 * h), (0.14 * w, 0.6 * h)]), sail * 0.92,
               seams, -0.1)
    else:
        s.fill(s.rect(0.3 * w, 0.38 * h, 0.72 * w, 0.66 * h), P.colour(rng, (230, 230, 225), 0.05))
        s.fill(s.rect(0.34 * w, 0.43 * h, 0.68 * w, 0.52 * h), GLASS)
        s.fill(s.line((0.6 * w, 0.2 * h), (0.6 * w, 0.4 * h), max(0.02 * w, 1)), (60, 60, 60))
    s.fill(s.poly([(0.0, 0.64 * h), (w, 0.64 * h), (0.88 * w, 0.94 * h), (0.1 * w, 0.94 * h)]), hull,
           P.vgrad(s.h, s.w, 0.3, -0.3), 0.2)
    s.fill(s.rect(0.02 * w, 0.64 * h, 0.98 * w, 0.69 * h), (235, 235, 230))
    return s


def chair(rng, size):
    """Chair in front view: wooden (grain) or plastic; slatted backrest, seat, four legs."""
    h = float(size)
    w = 0.62 * h
    s = P.Sprite(h, w)
    if rng.random() < 0.65:
        col = P.colour(rng, P.pick(rng, ((125, 78, 42), (165, 115, 65))), 0.12)
        tex = P.stripes(s.h, s.w, 2.5, np.pi / 2 + 0.1) + 0.5 * P.noise(rng, s.h, s.w, 2)
    else:
        col, tex = P.colour(rng, P.pick(rng, ((225, 225, 220), (200, 50, 40), (35, 35, 40)))), None
    lw = max(0.06 * w, 1.5)
    for x in (0.2, 0.8):
        s.fill(s.line((x * w, 0.58 * h), (x * w, 0.93 * h), lw), col * 0.7, tex, 0.15)
    for x in (0.12, 0.88):
        s.fill(s.line((x * w, 0.0), (x * w, 0.6 * h), lw * 1.2), col, tex, 0.15)
        s.fill(s.line((x * w, 0.6 * h), (x * w, h), lw * 1.2), col, tex, 0.15)
    for y in (0.05, 0.17, 0.29):
        s.fill(s.rect(0.12 * w, y * h, 0.88 * w, (y + 0.08) * h), col, tex, 0.15)
    s.fill(s.poly([(0.1 * w, 0.52 * h), (0.9 * w, 0.52 * h), (w, 0.62 * h), (0.0, 0.62 * h)]), col * 1.1,
           tex, 0.15)
    s.fill(s.rect(0.0, 0.62 * h, w, 0.67 * h), col * 0.8, tex, 0.15)
    return s


def diningtable(rng, size):
    """Table in perspective: cloth (checked) or wooden top, front edge, four legs."""
    w = float(size)
    h = 0.62 * w
    s = P.Sprite(h, w)
    wood = P.colour(rng, P.pick(rng, ((120, 75, 40), (170, 120, 70))), 0.12)
    grain = P.stripes(s.h, s.w, 3, 0.05) + 0.5 * P.noise(rng, s.h, s.w, 2)
    lw = max(0.035 * w, 1.5)
    for x0, x1, y1 in ((0.2, 0.2, 0.85), (0.8, 0.8, 0.85), (0.06, 0.06, 1.0), (0.94, 0.94, 1.0)):
        s.fill(s.line((x0 * w, 0.4 * h), (x1 * w, y1 * h), lw), wood * 0.75, grain, 0.15)
    top = s.poly([(0.12 * w, 0.1 * h), (0.88 * w, 0.1 * h), (w, 0.45 * h), (0.0, 0.45 * h)])
    if rng.random() < 0.5:
        cloth = P.colour(rng, P.pick(rng, ((200, 40, 40), (40, 70, 160), (40, 130, 70))), 0.1)
        s.fill(top, np.full(3, 235.0), None)
        s.fill(top & (P.checker(s.h, s.w, max(0.06 * w, 2)) > 0), cloth)
        s.fill(s.rect(0.0, 0.45 * h, w, 0.62 * h), cloth * 0.9)  # hanging cloth
    else:
        s.fill(top, wood, grain, 0.15)
        s.fill(s.rect(0.0, 0.45 * h, w, 0.52 * h), wood * 0.7, grain, 0.15)
    return s


def pottedplant(rng, size):
    """Terracotta or ceramic pot with a rim, and a bushy plant of leaf ellipses (maybe flowers)."""
    h = float(size)
    w = 0.68 * h
    s = P.Sprite(h, w)
    pot = P.colour(rng, P.pick(rng, ((185, 95, 55), (70, 90, 150), (225, 220, 210))), 0.1)
    leaf = P.colour(rng, (55, 125, 45), 0.15, 8)
    tex = P.leaves(rng, s.h, s.w, max(h / 40, 1.2))
    foliage = np.zeros((s.h, s.w), bool)
    for _ in range(int(rng.integers(7, 12))):
        a = rng.uniform(-1.3, 1.3)
        ln = rng.uniform(0.25, 0.45) * h
        cx, cy = 0.5 * w + np.sin(a) * 0.6 * ln, 0.62 * h - np.cos(a) * 0.6 * ln
        foliage |= s.ellipse(cx, cy, 0.09 * h, 0.5 * ln * 0.7, angle=np.degrees(a))
    s.fill(foliage, leaf, tex, 0.35)
    if rng.random() < 0.3:
        petal = P.colour(rng, P.pick(rng, ((230, 80, 120), (245, 220, 60), (240, 240, 240))))
        for _ in range(int(rng.integers(3, 7))):
            ys, xs = np.nonzero(foliage)
            j = int(rng.integers(len(ys)))
            s.fill(s.circle(xs[j], ys[j], 0.035 * h), petal)
    s.fill(s.poly([(0.24 * w, 0.66 * h), (0.76 * w, 0.66 * h), (0.68 * w, h), (0.32 * w, h)]), pot,
           P.cylinder(s.h, s.w), 0.2)
    s.fill(s.rect(0.2 * w, 0.62 * h, 0.8 * w, 0.7 * h), pot * 0.85)
    return s


def sofa(rng, size):
    """Upholstered sofa: back, two rolled arms, seat cushions, base and short legs."""
    w = float(size)
    h = 0.5 * w
    s = P.Sprite(h, w)
    fabric = P.colour(rng, P.pick(rng, ((110, 60, 120), (60, 80, 130), (120, 115, 110),
                                         (140, 80, 50), (150, 40, 40))), 0.12)
    weave = 0.4 * P.checker(s.h, s.w, 1) + P.noise(rng, s.h, s.w, max(0.05 * w, 1))
    for x in (0.06, 0.9):
        s.fill(s.rect(x * w, 0.88 * h, (x + 0.04) * w, h), (40, 30, 25))
    s.fill(s.rect(0.06 * w, 0.05 * h, 0.94 * w, 0.6 * h), fabric * 0.9, weave, 0.12)
    s.fill(s.rect(0.0, 0.72 * h, w, 0.9 * h), fabric * 0.75, weave, 0.12)
    for x0 in (0.12, 0.5):
        s.fill(s.rect(x0 * w, 0.52 * h, (x0 + 0.37) * w, 0.76 * h), fabric * 1.1, weave, 0.12)
    for x in (0.07, 0.93):
        s.fill(s.ellipse(x * w, 0.38 * h, 0.07 * w, 0.08 * w), fabric, weave, 0.12)
        s.fill(s.rect((x - 0.07) * w, 0.38 * h, (x + 0.07) * w, 0.86 * h), fabric, weave, 0.12)
    return s


def tvmonitor(rng, size):
    """Monitor: black bezel around a bright screen showing a picture, on a stand."""
    w = float(size)
    h = 0.8 * w
    s = P.Sprite(h, w)
    dark = P.colour(rng, (28, 28, 32), 0.2, 3)
    s.fill(s.rect(0.45 * w, 0.7 * h, 0.55 * w, 0.92 * h), dark * 1.5)
    s.fill(s.ellipse(0.5 * w, 0.94 * h, 0.22 * w, 0.045 * w), dark * 1.5)
    s.fill(s.rect(0.0, 0.0, w, 0.72 * h), dark, P.vgrad(s.h, s.w, 0.3, -0.3), 0.3)
    screen = s.rect(0.05 * w, 0.05 * h, 0.95 * w, 0.66 * h)
    a, b = P.colour(rng, P.pick(rng, P.SKIES), 0.2), P.colour(rng, (240, 230, 200), 0.2, 30)
    t = (P.noise(rng, s.h, s.w, max(0.25 * w, 1)) + 1) / 2
    s.fill(screen, a * 1.1)
    s.rgb[:, screen] = (a[:, None] * t[screen] + b[:, None] * (1 - t[screen]))
    for _ in range(int(rng.integers(0, 3))):  # windows / picture elements on the screen
        x0, y0 = rng.uniform(0.1, 0.6) * w, rng.uniform(0.1, 0.4) * h
        s.fill(screen & s.rect(x0, y0, x0 + rng.uniform(0.15, 0.3) * w, y0 + rng.uniform(0.1, 0.2) * h),
               P.colour(rng, P.pick(rng, P.CLUTTER), 0.3, 40))
    return s


def cat(rng, size):
    return P.quadruped(rng, size, P.pick(rng, ((215, 135, 60), (130, 130, 135), (205, 195, 175))),
                       'tabby', body=(0.9, 0.3), legs=(0.32, 0.07), neck=(0.1, 45.0, 0.14),
                       head=(0.28, 0.25), ears='pointy', tail=(0.5, 60.0))


def cow(rng, size):
    return P.quadruped(rng, size, (235, 235, 230), 'spots', body=(1.0, 0.5), legs=(0.42, 0.11),
                       neck=(0.16, 15.0, 0.25), head=(0.34, 0.22), ears='side', tail=(0.5, -75.0),
                       second=P.pick(rng, ((30, 30, 30), (30, 30, 30), (125, 70, 35))))


def horse(rng, size):
    return P.quadruped(rng, size, P.pick(rng, ((140, 70, 30), (90, 55, 30), (40, 32, 30),
                                               (215, 210, 200))),
                       'smooth', body=(1.0, 0.38), legs=(0.6, 0.08), neck=(0.42, 60.0, 0.17),
                       head=(0.4, 0.16), ears='pointy', tail=(0.5, -60.0), mane=(30, 25, 22))


def sheep(rng, size):
    return P.quadruped(rng, size, (225, 220, 200), 'wool', body=(1.0, 0.62), legs=(0.28, 0.08),
                       neck=(0.1, 25.0, 0.2), head=(0.3, 0.22), ears='side', tail=(0.15, -60.0),
                       face=(35, 30, 30), leg_col=(35, 30, 30))


# Class index -> sprite factory ``f(rng, longest_side_px)``.
def train(rng, size):
    """The shared side-view train, longer than the frame as trains usually are in VOC photos."""
    return P.train(rng, 1.5 * size)


MAKERS = {1: aeroplane, 2: P.bicycle, 3: bird, 4: boat, 5: P.bottle, 6: P.bus, 7: P.car, 8: cat,
          9: chair, 10: cow, 11: diningtable, 12: P.dog, 13: horse, 14: P.motorbike, 15: P.person,
          16: pottedplant, 17: sheep, 18: sofa, 19: train, 20: tvmonitor}


# ---------------------------------------------------------------------------------- scene
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


def _element(parent, tag, **children):
    """``<tag>`` under ``parent`` with one text child per keyword, in order."""
    el = ET.SubElement(parent, tag)
    for key, value in children.items():
        ET.SubElement(el, key).text = str(value)
    return el


def annotation_xml(name, h, w, objects):
    """The VOC detection annotation of one image (the fields mmdet's ``XMLDataset`` reads)."""
    root = ET.Element('annotation')
    ET.SubElement(root, 'filename').text = f'{name}.jpg'
    _element(root, 'size', width=w, height=h, depth=3)
    ET.SubElement(root, 'segmented').text = '1'
    for cls, box, cut in objects:
        obj = _element(root, 'object', name=VOC_CLASSES[cls], pose='Unspecified',
                       truncated=int(cut), difficult=0)
        _element(obj, 'bndbox', **dict(zip(('xmin', 'ymin', 'xmax', 'ymax'), box)))
    ET.indent(root, '\t')
    return ET.tostring(root, encoding='unicode') + '\n'


def generate_voc(root, num_train=300, num_val=100, size=(160, 160), seed=0, force=False):
    """Write a synthetic PASCAL VOC-format segmentation + detection dataset; returns ``root``.

    Deterministic in ``seed`` (each image has its own generator) and idempotent: a finished
    generation with the same parameters is reused unless ``force``.
    """
    h, w = P.check_args(num_train, num_val, size, seed)
    root = Path(root)
    params = dict(dataset='voc', num_train=int(num_train), num_val=int(num_val), size=[h, w],
                  seed=int(seed), version=2)  # 2: added the detection annotations
    if P.reuse_or_reset(root, params, OUTPUTS, force):
        return root
    palette = voc_palette().reshape(-1).tolist()
    for sub in ('SegmentationClass', 'Annotations', 'ImageSets/Segmentation', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    sets, main = root / 'ImageSets' / 'Segmentation', root / 'ImageSets' / 'Main'
    names = {}
    for split, num in (('train', num_train), ('val', num_val)):
        names[split] = [f'2012_{NAME_OFFSET[split] + i:06d}' for i in range(num)]
        for i, name in enumerate(names[split]):
            rng = P.image_rng(seed, DATASET_ID, SPLIT_IDS[split], i)
            img, lbl, objects = render_scene(rng, i, h, w)
            P.write_rgb(root / 'JPEGImages' / f'{name}.jpg', img, jpeg_quality=95)
            png = Image.frombytes('P', (w, h), np.ascontiguousarray(lbl).tobytes())
            png.putpalette(palette)
            png.save(root / 'SegmentationClass' / f'{name}.png')
            (root / 'Annotations' / f'{name}.xml').write_text(annotation_xml(name, h, w, objects))
        listing = '\n'.join(names[split]) + '\n'
        (sets / f'{split}.txt').write_text(listing)
        (main / f'{split}.txt').write_text(listing)
    (sets / 'trainval.txt').write_text('\n'.join(names['train'] + names['val']) + '\n')
    (main / 'test.txt').write_text('\n'.join(names['val']) + '\n')  # mmdet's VOC test split
    P.mark_complete(root, params)
    return root
