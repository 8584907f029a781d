"""Shared drawing helpers for the synthetic Cityscapes / VOC / COCO generators.

The three generators need the same building blocks (textures, objects such as people and cars, a
cluttered background, camera-like finishing, the generation marker), so they live here and each
generator only describes its scene layout and its file format. Everything is numpy + cv2, and every
random choice comes from a passed ``numpy.random.Generator``: an image depends only on the generator
it was given, never on how many images came before it.

Colours are RGB floats in [0, 255]; textures are float32 ``(h, w)`` patterns in about [-1, 1] that
modulate a base colour as ``colour * (1 + amp * texture)``. Pixels are stored channel-first
``(3, h, w)`` while painting because numpy broadcasts a colour over a trailing axis of 3 slowly.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from statistics import NormalDist

import cv2
import numpy as np

# ----------------------------------------------------------------------------------------------
# Colours
# ----------------------------------------------------------------------------------------------
SKINS = ((225, 185, 150), (195, 145, 105), (150, 100, 70), (100, 65, 45))
HAIRS = ((30, 25, 20), (85, 55, 30), (160, 125, 75), (70, 70, 70))
SHIRTS = ((175, 40, 50), (40, 60, 130), (35, 35, 40), (215, 215, 210), (95, 65, 45),
          (60, 110, 75), (140, 80, 135))
TROUSERS = ((35, 40, 70), (28, 28, 32), (85, 85, 90), (105, 85, 60))
HIVIS = ((235, 220, 40), (245, 140, 30), (165, 230, 60))
HELMETS = ((235, 235, 235), (220, 45, 40), (30, 30, 30), (245, 200, 35))
CAR_PAINTS = ((35, 55, 120), (165, 170, 175), (30, 30, 35), (170, 35, 35), (225, 225, 220),
              (60, 90, 110))
BUS_PAINTS = ((235, 190, 40), (235, 120, 30), (200, 45, 40))
TRAIN_BANDS = ((200, 40, 40), (40, 80, 170), (40, 140, 80))
BIKE_FRAMES = ((200, 40, 40), (40, 70, 170), (30, 30, 30), (40, 150, 80), (230, 230, 230))
MOTO_PAINTS = ((200, 30, 30), (25, 25, 30), (35, 65, 165), (240, 125, 25), (230, 230, 230))
GLASS = (55, 70, 90)
TYRE = (28, 28, 30)
CHROME = (185, 185, 190)


def pick(rng, options):
    """One element of ``options`` (a tuple of colours, shapes, ...)."""
    return options[int(rng.integers(len(options)))]


def colour(rng, base, value=0.15, tint=10.0):
    """An instance's own colour: ``base`` with its own brightness and a small tint."""
    c = np.asarray(base, np.float64) * (1 + value * (2 * rng.random() - 1))
    c += tint * rng.standard_normal(3)
    return np.clip(c, 0, 255).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Textures: float32 (h, w) patterns in about [-1, 1]
# ----------------------------------------------------------------------------------------------
def noise(rng, h, w, cell=1.0):
    """Value noise: random values on a grid of ``cell`` px, smoothly interpolated (cell 1 = grain)."""
    h, w = int(h), int(w)
    if cell <= 1:
        return rng.random((h, w), dtype=np.float32) * 2 - 1
    gh, gw = int(np.ceil(h / cell)) + 1, int(np.ceil(w / cell)) + 1
    grid = rng.random((gh, gw), dtype=np.float32) * 2 - 1
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _coords(h, w):
    return (np.arange(int(h), dtype=np.float32)[:, None], np.arange(int(w), dtype=np.float32)[None, :])


def stripes(h, w, period, angle=0.0, phase=0.0, duty=None):
    """Parallel bands across direction ``angle`` (rad): grain, slats, fur; ``duty`` = hard-edged."""
    y, x = _coords(h, w)
    period = max(float(period), 1e-3)
    t = x * np.float32(np.cos(angle) / period) + (y * np.float32(np.sin(angle) / period)
                                                   + np.float32(phase))
    if duty is None:
        return np.sin(np.float32(2 * np.pi) * t)
    return np.where(t - np.floor(t) < duty, np.float32(1), np.float32(-1))


def checker(h, w, cell, phase=(0, 0)):
    """Checkerboard of +-1 (tablecloths, tiles)."""
    y, x = np.ogrid[:int(h), :int(w)]
    cell = max(int(cell), 1)
    odd = ((x + phase[0]) // cell + (y + phase[1]) // cell) % 2
    return np.where(odd == 0, 1.0, -1.0).astype(np.float32)


def joints(h, w, cell_h, cell_w, width=1, stagger=False):
    """Boolean joint lines of tiles (``stagger=False``) or bricks (``stagger=True``)."""
    y, x = np.ogrid[:int(h), :int(w)]
    cell_h, cell_w = max(int(cell_h), 2), max(int(cell_w), 2)
    shift = ((y // cell_h) % 2) * (cell_w // 2) if stagger else 0
    return ((y % cell_h) < width) | (((x + shift) % cell_w) < width)


def grid_cells(n, cell, offset=0.0, fill=0.55):
    """1-D window layout along one axis: (inside-a-window mask, cell index) per pixel."""
    t = (np.arange(int(n), dtype=np.float32) - offset) / max(cell, 2.0)
    frac, idx = t - np.floor(t), np.floor(t).astype(np.int64)
    m = (1 - fill) / 2
    return (frac >= m) & (frac < 1 - m), idx


def window_grid(h, w, cell_h, cell_w, fill=0.55, x0=0, y0=0):
    """Boolean windows of a facade: a centred ``fill`` fraction of every grid cell."""
    rows, _ = grid_cells(h, cell_h, y0, fill)
    cols, _ = grid_cells(w, cell_w, x0, fill)
    return rows[:, None] & cols[None, :]


def leaves(rng, h, w, cell=2.0):
    """Clumpy foliage: sharpened leaf-sized noise over coarser light/shadow patches."""
    return np.clip(0.7 * np.tanh(2.5 * noise(rng, h, w, cell)) + 0.45 * noise(rng, h, w, cell * 5),
                   -1, 1)


def spots(rng, h, w, cell):
    """Boolean two-tone patches (cow hide): thresholded coarse noise."""
    return noise(rng, h, w, cell) > 0.2


def spokes(h, w, cx, cy, n=12):
    """Radial spoke lines around (cx, cy): +1 on a spoke, -1 between (wheels)."""
    y, x = np.ogrid[:int(h), :int(w)]
    ang = np.arctan2(y - cy, x - cx)
    return np.where(np.cos(n * ang) > 0.8, 1.0, -1.0).astype(np.float32)


def vgrad(h, w, lo=-1.0, hi=1.0):
    """Top-to-bottom ramp (sky, metallic bodies lit from above)."""
    return np.broadcast_to(np.linspace(lo, hi, int(h), dtype=np.float32)[:, None],
                           (int(h), int(w)))


def cylinder(h, w):
    """Across-x shading of a vertical cylinder (poles, bottles): bright middle, dark rims."""
    prof = np.cos(np.linspace(-np.pi / 2, np.pi / 2, int(w), dtype=np.float32)) * 2 - 1
    return np.broadcast_to(prof[None, :], (int(h), int(w)))


# ----------------------------------------------------------------------------------------------
# Sprite (one object on its own small canvas) and Canvas (the image, its labels and instances)
# ----------------------------------------------------------------------------------------------
_GAUSS_LUT = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], np.float32)


def _pt(p):
    return int(round(p[0])), int(round(p[1]))


class Sprite:
    """An object drawn on its own small canvas: colour, opacity and coverage, pasted later.

    Shape methods return boolean masks in sprite coordinates; ``fill`` paints a mask. Parts are
    painted in order, so later parts cover earlier ones. ``alpha`` < 1 makes a part see-through
    (wheel interiors, fence gaps) while it still belongs to the object's label.
    """

    def __init__(self, h, w):
        self.h, self.w = max(int(round(h)), 1), max(int(round(w)), 1)
        self.rgb = np.zeros((3, self.h, self.w), np.float32)
        self.alpha = np.zeros((self.h, self.w), np.float32)
        self.anchors = {}

    @property
    def mask(self):
        return self.alpha > 0

    def _blank(self):
        return np.zeros((self.h, self.w), np.uint8)

    def rect(self, x0, y0, x1, y1):
        m = np.zeros((self.h, self.w), bool)
        r = [max(int(round(v)), 0) for v in (x0, y0, x1, y1)]
        m[r[1]:r[3], r[0]:r[2]] = True
        return m

    def poly(self, pts):
        m = self._blank()
        cv2.fillPoly(m, [np.round(np.asarray(pts, np.float64)).astype(np.int32)], 1)
        return m.astype(bool)

    def ellipse(self, cx, cy, rx, ry, angle=0.0):
        m = self._blank()
        cv2.ellipse(m, _pt((cx, cy)), (max(int(round(rx)), 1), max(int(round(ry)), 1)), angle, 0, 360,
                    1, -1)
        return m.astype(bool)

    def circle(self, cx, cy, r):
        return self.ellipse(cx, cy, r, r)

    def ring(self, cx, cy, r, width):
        return self.circle(cx, cy, r) & ~self.circle(cx, cy, r - max(width, 1))

    def line(self, p0, p1, width):
        m = self._blank()
        cv2.line(m, _pt(p0), _pt(p1), 1, max(int(round(width)), 1))
        return m.astype(bool)

    def fill(self, region, col, tex=None, amp=0.0, alpha=1.0):
        """Paint ``region`` with ``col`` modulated by ``tex`` (full-sprite pattern) and opacity."""
        x, y, w, h = cv2.boundingRect(region.view(np.uint8))  # work on the part's box only
        if w == 0:
            return region
        box = (slice(y, y + h), slice(x, x + w))
        col = np.asarray(col, np.float32).reshape(3, 1, 1)
        if tex is not None:
            col = col * (1 + amp * np.asarray(tex, np.float32)[box])
        np.copyto(self.rgb[(slice(None), *box)], col, where=region[box])
        np.copyto(self.alpha[box], np.float32(alpha), where=region[box])
        return region

    def flip(self):
        """Mirror left-right (objects are drawn facing right), anchors included."""
        self.rgb, self.alpha = self.rgb[:, :, ::-1].copy(), self.alpha[:, ::-1].copy()
        self.anchors = {k: (self.w - 1 - x, y) for k, (x, y) in self.anchors.items()}
        return self


class Canvas:
    """The image being painted with its semantic label map and instance-id map.

    Painting order is occlusion order: whatever is painted later is in front, for pixels, labels
    and instance ids alike, so the annotations always describe what is visible.
    """

    def __init__(self, h, w, label=0):
        self.h, self.w = int(h), int(w)
        self.img = np.zeros((3, self.h, self.w), np.float32)
        self.lbl = np.full((self.h, self.w), label, np.uint8)
        self.inst = np.zeros((self.h, self.w), np.int32)

    def fill(self, region, col, label, tex=None, amp=0.0, inst=0):
        """Paint a full-frame boolean ``region``; ``col`` is a colour or a (3, h, w) image."""
        col = np.asarray(col, np.float32)
        if col.ndim == 1:
            col = col.reshape(3, 1, 1)
        if tex is not None:
            col = col * (1 + amp * np.asarray(tex, np.float32))
        np.copyto(self.img, col, where=region)
        np.copyto(self.lbl, np.uint8(label), where=region)
        np.copyto(self.inst, np.int32(inst), where=region)

    def paste(self, sprite, x, y, label, inst=0):
        """Composite ``sprite`` with its top-left corner at (x, y), clipped; returns pixels drawn."""
        x, y = int(round(x)), int(round(y))
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + sprite.w, self.w), min(y + sprite.h, self.h)
        if x1 <= x0 or y1 <= y0:
            return 0
        a = sprite.alpha[y0 - y:y1 - y, x0 - x:x1 - x]
        m = a > 0
        img = self.img[:, y0:y1, x0:x1]
        img += (sprite.rgb[:, y0 - y:y1 - y, x0 - x:x1 - x] - img) * a
        np.copyto(self.lbl[y0:y1, x0:x1], np.uint8(label), where=m)
        np.copyto(self.inst[y0:y1, x0:x1], np.int32(inst), where=m)
        return int(np.count_nonzero(m))

    def paste_on_ground(self, sprite, cx, foot_y, label, inst=0):
        """Paste with the sprite's bottom-centre at (cx, foot_y): how things stand on the ground."""
        return self.paste(sprite, cx - sprite.w / 2, foot_y - sprite.h, label, inst)

    def fill_poly(self, pts, col, label, tex=None, amp=0.0, alpha=1.0, inst=0):
        """Paint a polygon; ``tex`` is ``f(h, w)`` evaluated on the polygon's bounding box only."""
        self.fill_polys([pts], col, label, tex, amp, alpha, inst)

    def fill_polys(self, polys, col, label, tex=None, amp=0.0, alpha=1.0, inst=0):
        """Paint several polygons alike in one pass (lane marks, stripes)."""
        polys = [np.asarray(p, np.float64) for p in polys]
        allp = np.concatenate(polys)
        x0 = max(int(np.floor(allp[:, 0].min())), 0)
        y0 = max(int(np.floor(allp[:, 1].min())), 0)
        x1 = min(int(np.ceil(allp[:, 0].max())) + 1, self.w)
        y1 = min(int(np.ceil(allp[:, 1].max())) + 1, self.h)
        if x1 <= x0 or y1 <= y0:
            return
        s = Sprite(y1 - y0, x1 - x0)
        m = s._blank()
        cv2.fillPoly(m, [np.round(p - (x0, y0)).astype(np.int32) for p in polys], 1)
        s.fill(m.astype(bool), col, None if tex is None else tex(s.h, s.w), amp, alpha)
        self.paste(s, x0, y0, label, inst)

    def finish(self, rng, noise_std=(2.0, 6.0), blur=(0.4, 0.9), light=0.12):
        """Camera look: uneven lighting, slight defocus and sensor noise; returns uint8 RGB."""
        h, w = self.h, self.w
        gain = 1 + light * noise(rng, h, w, max(h, w) / 2)
        img = np.ascontiguousarray((self.img * gain).transpose(1, 2, 0))
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(*blur))
        # Gaussian sensor noise via a 256-level lookup: 3x faster than standard_normal.
        img += _GAUSS_LUT[rng.integers(0, 256, img.shape, dtype=np.uint8)] * rng.uniform(*noise_std)
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Objects shared by several datasets; all face right (``Sprite.flip`` mirrors them).
# ``size`` is the sprite's longest side in pixels.
# ----------------------------------------------------------------------------------------------
def _wheel(s, c, r, tyre_w, hub=(120, 120, 125), alpha=1.0):
    """A wheel: see-through (or solid) spoked disc with a dark tyre."""
    s.fill(s.circle(c[0], c[1], r), hub, spokes(s.h, s.w, c[0], c[1]), 0.35, alpha)
    s.fill(s.ring(c[0], c[1], r, tyre_w), TYRE)


def person(rng, size):
    """A standing / walking pedestrian ``size`` px tall."""
    h = float(size)
    s = Sprite(h, 0.46 * h + 2)
    cx = s.w / 2
    skin, hair = colour(rng, pick(rng, SKINS), 0.1, 6), colour(rng, pick(rng, HAIRS), 0.2, 6)
    shirt, trousers = colour(rng, pick(rng, SHIRTS)), colour(rng, pick(rng, TROUSERS))
    cloth = noise(rng, s.h, s.w, max(h / 25, 1))
    stride = rng.uniform(-0.12, 0.12) * h
    for side in (-1, 1):
        s.fill(s.line((cx + side * 0.045 * h, 0.53 * h), (cx + side * stride, 0.95 * h), 0.085 * h),
               trousers, cloth, 0.12)
        s.fill(s.ellipse(cx + side * stride + 0.02 * h, 0.965 * h, 0.045 * h, 0.025 * h), TYRE)
    torso = s.poly([(cx - 0.12 * h, 0.19 * h), (cx + 0.12 * h, 0.19 * h),
                    (cx + 0.1 * h, 0.57 * h), (cx - 0.1 * h, 0.57 * h)])
    tex = stripes(s.h, s.w, 0.06 * h, np.pi / 2) if rng.random() < 0.25 else cloth
    s.fill(torso, shirt, tex, 0.2)
    swing = rng.uniform(-0.06, 0.06) * h
    for side in (-1, 1):
        hand = (cx + side * 0.16 * h + side * swing, 0.5 * h)
        s.fill(s.line((cx + side * 0.11 * h, 0.22 * h), hand, 0.06 * h), shirt * 0.85, cloth, 0.1)
        s.fill(s.circle(hand[0], hand[1], 0.03 * h), skin)
    if rng.random() < 0.3:  # a bag hanging from one hand
        bx = cx + pick(rng, (-1, 1)) * 0.17 * h
        s.fill(s.rect(bx - 0.05 * h, 0.45 * h, bx + 0.05 * h, 0.58 * h), colour(rng, (70, 45, 30)))
    s.fill(s.circle(cx, 0.1 * h, 0.075 * h), skin)
    s.fill(s.ellipse(cx, 0.065 * h, 0.08 * h, 0.045 * h), hair)
    return s


def rider(rng, bike):
    """A cyclist / motorcyclist seated on ``bike`` (uses its seat, bar and pedal anchors).

    Returns a sprite as wide as the bike and ``top`` px taller; paste it at (bike_x, bike_y - top)
    so the two line up. Riders wear helmets and hi-vis jackets: what tells them from pedestrians
    (besides sitting on a bike).
    """
    u = bike.w * 1.1  # body height in px
    top = int(round(0.5 * u))
    s = Sprite(bike.h + top, bike.w)
    seat, bar, pedal = (np.add(bike.anchors[k], (0, top)) for k in ('seat', 'bar', 'pedal'))
    jacket, trousers = colour(rng, pick(rng, HIVIS)), colour(rng, pick(rng, TROUSERS))
    hip = seat + (0, -0.03 * u)
    knee = hip + (0.17 * u, 0.0)
    shoulder = hip + (0.12 * u, -0.3 * u)
    head = shoulder + (0.07 * u, -0.11 * u)
    s.fill(s.line(hip, knee, 0.1 * u), trousers)
    s.fill(s.line(knee, pedal, 0.09 * u), trousers)
    s.fill(s.line(hip, shoulder, 0.2 * u), jacket, noise(rng, s.h, s.w, 2), 0.1)
    s.fill(s.line(shoulder, bar, 0.07 * u), jacket * 0.9)
    s.fill(s.circle(head[0], head[1], 0.075 * u), colour(rng, pick(rng, SKINS), 0.1, 6))
    s.fill(s.ellipse(head[0], head[1] - 0.025 * u, 0.085 * u, 0.06 * u),
           colour(rng, pick(rng, HELMETS), 0.1, 5))
    s.anchors['top'] = (0, top)
    return s


def bicycle(rng, size):
    """A bicycle: spoked see-through wheels and a thin coloured frame."""
    w = float(size)
    s = Sprite(0.64 * w, w)
    r = 0.2 * w
    cy = s.h - r - 1
    rear, front, bb = (0.21 * w, cy), (0.79 * w, cy), (0.45 * w, cy)
    seat, head, bar = (0.38 * w, cy - 0.36 * w), (0.71 * w, cy - 0.32 * w), (0.73 * w, cy - 0.41 * w)
    for c in (rear, front):
        _wheel(s, c, r, max(1.5, 0.045 * w), hub=(150, 150, 155), alpha=0.55)
    frame, fw = colour(rng, pick(rng, BIKE_FRAMES)), max(1.5, 0.035 * w)
    for a, b in ((rear, bb), (rear, seat), (bb, seat), (seat, head), (bb, head), (head, front),
                 (head, bar)):
        s.fill(s.line(a, b, fw), frame)
    s.fill(s.ellipse(seat[0], seat[1], 0.055 * w, 0.022 * w), TYRE)
    s.fill(s.line((bar[0] - 0.05 * w, bar[1]), (bar[0] + 0.03 * w, bar[1]), fw), TYRE)
    s.anchors = dict(seat=seat, bar=bar, pedal=(bb[0] + 0.03 * w, bb[1] + 0.04 * w))
    return s


def motorbike(rng, size):
    """A motorcycle: thick solid wheels, painted tank/fairing, grey engine, chrome exhaust."""
    w = float(size)
    s = Sprite(0.62 * w, w)
    r = 0.19 * w
    cy = s.h - r - 1
    paint = colour(rng, pick(rng, MOTO_PAINTS))
    fork_top = (0.7 * w, cy - 0.36 * w)
    s.fill(s.line((0.8 * w, cy), fork_top, 0.04 * w), CHROME)
    for cx in (0.2 * w, 0.8 * w):
        s.fill(s.circle(cx, cy, r), TYRE, noise(rng, s.h, s.w, 1), 0.1)
        s.fill(s.circle(cx, cy, 0.55 * r), (125, 125, 130), spokes(s.h, s.w, cx, cy, 5), 0.3)
    s.fill(s.rect(0.37 * w, cy - 0.17 * w, 0.6 * w, cy + 0.02 * w), (85, 85, 90),
           stripes(s.h, s.w, max(0.03 * w, 2), np.pi / 2), 0.25)
    s.fill(s.line((0.47 * w, cy + 0.03 * w), (0.08 * w, cy - 0.03 * w), 0.045 * w), CHROME)
    gloss = vgrad(s.h, s.w, 0.6, -0.6)
    s.fill(s.poly([(0.33 * w, cy - 0.2 * w), (0.48 * w, cy - 0.34 * w), (0.68 * w, cy - 0.34 * w),
                   (0.74 * w, cy - 0.2 * w), (0.56 * w, cy - 0.12 * w)]), paint, gloss, 0.25)
    s.fill(s.poly([(0.06 * w, cy - 0.23 * w), (0.36 * w, cy - 0.26 * w), (0.36 * w, cy - 0.17 * w),
                   (0.12 * w, cy - 0.15 * w)]), paint, gloss, 0.25)
    s.fill(s.poly([(0.18 * w, cy - 0.3 * w), (0.47 * w, cy - 0.31 * w), (0.45 * w, cy - 0.25 * w),
                   (0.2 * w, cy - 0.25 * w)]), TYRE)
    s.fill(s.circle(0.77 * w, cy - 0.28 * w, 0.04 * w), (250, 240, 200))
    s.fill(s.line((0.64 * w, fork_top[1] - 0.03 * w), (0.74 * w, fork_top[1]), 0.03 * w), TYRE)
    s.anchors = dict(seat=(0.35 * w, cy - 0.29 * w), bar=(0.68 * w, cy - 0.38 * w),
                     pedal=(0.47 * w, cy - 0.04 * w))
    return s


def car(rng, size):
    """A side-view car: painted body with a cabin, dark windows, wheels and lights."""
    w = float(size)
    h = 0.42 * w
    s = Sprite(h, w)
    paint = colour(rng, pick(rng, CAR_PAINTS))
    gloss = vgrad(s.h, s.w, 0.5, -0.5) + 0.15 * noise(rng, s.h, s.w, max(w / 12, 1))

    def P(pts):
        return [(x * w, y * h) for x, y in pts]

    s.fill(s.poly(P([(0.22, 0.45), (0.32, 0.07), (0.68, 0.07), (0.82, 0.45)])), paint, gloss, 0.3)
    s.fill(s.poly(P([(0.0, 0.55), (0.05, 0.4), (0.95, 0.42), (1.0, 0.55), (1.0, 0.78),
                     (0.96, 0.84), (0.04, 0.84), (0.0, 0.78)])), paint, gloss, 0.3)
    glass = colour(rng, GLASS, 0.15, 5)
    refl = stripes(s.h, s.w, 0.12 * w, 0.9)
    s.fill(s.poly(P([(0.27, 0.42), (0.35, 0.14), (0.49, 0.14), (0.49, 0.42)])), glass, refl, 0.25)
    s.fill(s.poly(P([(0.52, 0.42), (0.52, 0.14), (0.65, 0.14), (0.76, 0.42)])), glass, refl, 0.25)
    s.fill(s.line((0.51 * w, 0.45 * h), (0.51 * w, 0.8 * h), 1), paint * 0.6)
    s.fill(s.rect(0.0, 0.47 * h, 0.03 * w, 0.6 * h), (200, 30, 30))
    s.fill(s.rect(0.96 * w, 0.47 * h, w, 0.58 * h), (250, 240, 200))
    r = 0.09 * w
    for cx in (0.2 * w, 0.8 * w):
        s.fill(s.circle(cx, h - r - 1, r * 1.15), paint * 0.35)
        _wheel(s, (cx, h - r - 1), r, 0.45 * r, hub=CHROME)
    return s


def bus(rng, size):
    """A side-view bus: long warm-coloured body, a row of big windows, a door, dark skirt."""
    w = float(size)
    h = 0.36 * w
    s = Sprite(h, w)
    paint = colour(rng, pick(rng, BUS_PAINTS), 0.12)
    s.fill(s.rect(0, 0.03 * h, w, 0.88 * h), paint, noise(rng, s.h, s.w, max(w / 20, 1)), 0.08)
    glass, refl = colour(rng, GLASS, 0.15, 5), stripes(s.h, s.w, 0.1 * w, 1.0)
    n = int(rng.integers(5, 8))
    pitch = 0.8 / n
    for i in range(n):
        x0 = (0.04 + i * pitch) * w
        s.fill(s.rect(x0, 0.15 * h, x0 + 0.8 * pitch * w, 0.48 * h), glass, refl, 0.2)
    s.fill(s.rect(0.88 * w, 0.1 * h, 0.99 * w, 0.55 * h), glass, refl, 0.2)  # windscreen
    s.fill(s.rect(0.78 * w, 0.15 * h, 0.86 * w, 0.85 * h), glass * 0.8)  # door
    s.fill(s.rect(0, 0.7 * h, w, 0.88 * h), paint * 0.45)
    s.fill(s.rect(0.9 * w, 0.04 * h, 0.99 * w, 0.1 * h), (250, 170, 40))  # destination sign
    r = 0.14 * h
    for cx in (0.17 * w, 0.83 * w):
        _wheel(s, (cx, h - r - 1), r, 0.45 * r, hub=(110, 110, 115))
    return s


def train(rng, size):
    """A side-view train / tram: very long light body, coloured band, windows, bogies, pantograph."""
    w = float(size)
    h = 0.22 * w
    s = Sprite(h, w)
    body = colour(rng, (215, 215, 210), 0.1, 5)
    band = colour(rng, pick(rng, TRAIN_BANDS))
    s.fill(s.line((0.4 * w, 0.0), (0.45 * w, 0.1 * h), 1), (60, 60, 60))
    s.fill(s.line((0.5 * w, 0.0), (0.45 * w, 0.1 * h), 1), (60, 60, 60))
    s.fill(s.poly([(0, 0.1 * h), (0.93 * w, 0.1 * h), (w, 0.4 * h), (w, 0.85 * h), (0, 0.85 * h)]),
           body, noise(rng, s.h, s.w, max(w / 30, 1)), 0.06)
    s.fill(s.rect(0, 0.56 * h, w, 0.68 * h), band)
    glass = colour(rng, GLASS, 0.15, 5)
    s.fill(window_grid(s.h, s.w, h * 0.5, 0.07 * w, 0.75, y0=0.08 * h) & s.rect(0, 0.15 * h, 0.9 * w,
                                                                                  0.5 * h), glass)
    s.fill(s.poly([(0.93 * w, 0.16 * h), (0.985 * w, 0.42 * h), (0.93 * w, 0.42 * h)]), glass)
    for x0 in (0.08, 0.6):
        s.fill(s.rect(x0 * w, 0.85 * h, (x0 + 0.22) * w, h), (40, 40, 42))
    return s


def bottle(rng, size):
    """A glass bottle: shaded cylinder body, shoulder, neck, cap and a paper label."""
    h = float(size)
    w = 0.32 * h
    s = Sprite(h, w)
    glass = colour(rng, pick(rng, ((40, 120, 55), (120, 65, 25), (150, 190, 210))), 0.12)
    cyl = cylinder(s.h, s.w)
    s.fill(s.poly([(0.08 * w, 0.38 * h), (0.92 * w, 0.38 * h), (0.92 * w, 0.97 * h), (0.82 * w, h),
                   (0.18 * w, h), (0.08 * w, 0.97 * h)]), glass, cyl, 0.3)
    s.fill(s.poly([(0.08 * w, 0.39 * h), (0.92 * w, 0.39 * h), (0.66 * w, 0.2 * h),
                   (0.34 * w, 0.2 * h)]), glass, cyl, 0.3)
    s.fill(s.rect(0.34 * w, 0.05 * h, 0.66 * w, 0.22 * h), glass, cyl, 0.3)
    s.fill(s.rect(0.3 * w, 0.0, 0.7 * w, 0.07 * h), colour(rng, pick(rng, ((200, 170, 60),
                                                                        (200, 40, 40),
                                                                        (230, 230, 230)))))
    s.fill(s.rect(0.08 * w, 0.52 * h, 0.92 * w, 0.76 * h), colour(rng, (235, 225, 200), 0.08),
           stripes(s.h, s.w, 0.1 * h, np.pi / 2, duty=0.3), 0.15)
    s.fill(s.rect(0.22 * w, 0.25 * h, 0.3 * w, 0.5 * h), (235, 240, 240), alpha=0.6)  # highlight
    return s


def quadruped(rng, size, coat, pattern='fur', body=(1.0, 0.36), legs=(0.42, 0.09),
              neck=(0.2, 45.0, 0.16), head=(0.34, 0.2), ears='floppy', tail=(0.4, 40.0),
              second=(30, 30, 30), face=None, leg_col=None, mane=None):
    """A side-view four-legged animal; the presets (dog, cat, cow, horse, sheep) set proportions.

    Lengths are relative to the body length; ``neck``/``tail`` angles are degrees above the
    horizontal; ``mane`` is an optional crest colour. ``pattern``: 'fur' (grain), 'smooth',
    'tabby' (stripes), 'spots' (patches of ``second``) or 'wool' (curly, lumpy outline).
    """
    bl, bh = body
    ll, lw = legs
    nl, na, nw = neck
    hl, hh = head
    tl, ta = tail
    n0 = np.array([0.4 * bl, -0.2 * bh])
    n1 = n0 + nl * np.array([np.cos(np.radians(na)), -np.sin(np.radians(na))])
    hc = n1 + (0.3 * hl, 0.0)
    t0 = np.array([-0.48 * bl, -0.25 * bh])
    t1 = t0 + tl * np.array([-np.cos(np.radians(ta)), -np.sin(np.radians(ta))])
    xmin = min(-0.55 * bl, t1[0] - 0.05)
    xmax = max(0.55 * bl, hc[0] + 0.55 * hl)
    ymin = min(-0.55 * bh, hc[1] - 0.8 * hh, t1[1] - 0.05)
    ymax = 0.5 * bh + ll
    k = float(size) / max(xmax - xmin, ymax - ymin)
    s = Sprite((ymax - ymin) * k + 2, (xmax - xmin) * k + 2)

    def T(p):  # body-centred units -> sprite px
        return ((p[0] - xmin) * k + 1, (p[1] - ymin) * k + 1)

    coat = colour(rng, coat, 0.15, 8)
    second = colour(rng, second, 0.15, 5)
    face = coat if face is None else colour(rng, face, 0.1, 5)
    leg_col = coat if leg_col is None else colour(rng, leg_col, 0.1, 5)
    if pattern == 'tabby':
        tex, amp = stripes(s.h, s.w, 0.09 * bl * k, 1.4) + 0.3 * noise(rng, s.h, s.w, 1), 0.3
    elif pattern == 'wool':
        tex, amp = noise(rng, s.h, s.w, max(0.025 * bl * k, 1)), 0.3
    elif pattern == 'smooth':
        tex, amp = noise(rng, s.h, s.w, max(0.2 * bl * k, 1)), 0.1
    else:
        tex, amp = noise(rng, s.h, s.w, 1) + 0.5 * noise(rng, s.h, s.w, max(0.1 * bl * k, 1)), 0.12
    foot_y = 0.5 * bh + ll
    leg_xs = (-0.36 * bl, -0.24 * bl, 0.28 * bl, 0.38 * bl)
    for i, lx in enumerate(leg_xs):  # far legs first, darker
        if i % 2 == 0:
            s.fill(s.line(T((lx + 0.02, 0.2 * bh)), T((lx + 0.03, foot_y)), lw * k), leg_col * 0.75)
    s.fill(s.line(T(t0), T(t1), max(0.05 * bl * k, 1)), coat * 0.8, tex, amp)
    if pattern == 'wool':
        lumps = s.ellipse(*T((0, 0)), 0.45 * bl * k, 0.42 * bh * k)
        for a in np.linspace(0, 2 * np.pi, 14, endpoint=False):
            lumps |= s.circle(*T((0.45 * bl * np.cos(a), 0.42 * bh * np.sin(a))), 0.09 * bl * k)
        s.fill(lumps, coat, tex, amp)
    else:
        s.fill(s.ellipse(*T((0, 0)), 0.5 * bl * k, 0.5 * bh * k), coat, tex, amp)
    s.fill(s.line(T(n0), T(n1), nw * k), coat, tex, amp)
    if mane is not None:  # a dark crest along the top of the neck (horses)
        s.fill(s.line(T(n0 + (-0.05, -0.4 * nw)), T(n1 + (0.0, -0.4 * nw)), 0.35 * nw * k),
               colour(rng, mane, 0.1, 5))
    s.fill(s.ellipse(*T(hc), 0.5 * hl * k, 0.5 * hh * k, angle=15 if na < 70 else 0), face, tex,
           amp * 0.5)
    if ears == 'pointy':
        for dx in (-0.25 * hl, 0.05 * hl):
            b = np.array(hc) + (dx, -0.35 * hh)
            s.fill(s.poly([T(b), T(b + (0.22 * hl, 0)), T(b + (0.08 * hl, -0.45 * hh))]), face)
    elif ears == 'floppy':
        s.fill(s.ellipse(*T(np.array(hc) + (-0.2 * hl, 0.05 * hh)), 0.12 * hl * k, 0.38 * hh * k,
                         angle=15), face * 0.6)
    else:  # 'side': horizontal ears (cow, sheep)
        s.fill(s.ellipse(*T(np.array(hc) + (-0.3 * hl, -0.3 * hh)), 0.2 * hl * k, 0.1 * hh * k,
                         angle=-20), face * 0.85)
    if pattern == 'spots':
        s.fill(s.mask & spots(rng, s.h, s.w, max(0.15 * bl * k, 2)), second)
    for i, lx in enumerate(leg_xs):  # near legs in front of the body
        if i % 2 == 1:
            s.fill(s.line(T((lx, 0.2 * bh)), T((lx, foot_y)), lw * k), leg_col, tex, amp)
            s.fill(s.ellipse(*T((lx + 0.01, foot_y - 0.02)), 0.6 * lw * k, 0.35 * lw * k),
                   leg_col * 0.4)
    s.fill(s.circle(*T(np.array(hc) + (0.15 * hl, -0.12 * hh)), max(0.035 * hl * k, 1)), (15, 15, 15))
    s.fill(s.circle(*T(np.array(hc) + (0.48 * hl, 0.05 * hh)), max(0.06 * hl * k, 1)), (25, 20, 20))
    return s


DOG_COATS = ((200, 150, 80), (120, 75, 40), (45, 38, 32), (225, 220, 205))


def dog(rng, size):
    """A dog: golden/brown/black/white fur, floppy dark ears, snout, tail up at an angle."""
    return quadruped(rng, size, pick(rng, DOG_COATS), 'fur', body=(1.0, 0.36),
                     legs=(0.42, 0.09), neck=(0.22, 50.0, 0.16), head=(0.36, 0.2), ears='floppy',
                     tail=(0.38, 35.0))


def free_spot(rng, sw, sh, h, w, boxes, outside=0.0, cover=0.3, tries=20):
    """Top-left corner for a ``sw`` x ``sh`` object that keeps every placed object mostly visible.

    The new box may cover at most ``cover`` of any box in ``boxes`` (and they at most half of it);
    up to ``outside`` of it may leave the frame. The accepted box is appended to ``boxes``;
    returns None when ``tries`` random spots all fail.
    """
    def span(size, room):  # an object larger than the frame just has to keep it covered
        lo, hi = -outside * size, room - (1 - outside) * size
        return (lo, hi) if hi >= lo else (room - size, 0.0)

    for _ in range(tries):
        x, y = rng.uniform(*span(sw, w)), rng.uniform(*span(sh, h))
        ok = True
        for a0, b0, a1, b1 in boxes:
            inter = max(0.0, min(x + sw, a1) - max(x, a0)) * max(0.0, min(y + sh, b1) - max(y, b0))
            if inter > cover * (a1 - a0) * (b1 - b0) or inter > 0.5 * sw * sh:
                ok = False
                break
        if ok:
            boxes.append((x, y, x + sw, y + sh))
            return x, y
    return None


# ----------------------------------------------------------------------------------------------
# Cluttered backgrounds (VOC, COCO)
# ----------------------------------------------------------------------------------------------
WALLS = ((205, 195, 175), (175, 190, 200), (210, 200, 160), (160, 150, 140), (190, 170, 160))
FLOORS = ((150, 105, 65), (120, 120, 115), (185, 160, 120), (95, 80, 70))
SKIES = ((110, 160, 215), (165, 185, 205), (140, 180, 225))
GROUNDS = ((95, 140, 60), (175, 160, 115), (115, 110, 105), (130, 120, 80))
CLUTTER = ((120, 100, 80), (90, 110, 130), (150, 140, 120), (170, 120, 110), (100, 120, 90),
           (60, 60, 65), (190, 185, 175), (130, 90, 120))


def _random_texture(rng, h, w):
    """One of several generic textures, so clutter is not identified by a single pattern."""
    kind = int(rng.integers(5))
    if kind == 0:
        return stripes(h, w, rng.uniform(3, 12), rng.uniform(0, np.pi)), 0.15
    if kind == 1:
        return checker(h, w, rng.integers(3, 10)), 0.12
    if kind == 2:
        return noise(rng, h, w, rng.uniform(1, 6)), 0.25
    if kind == 3:
        return joints(h, w, rng.integers(5, 14), rng.integers(8, 20), 1, True) * -1.5 + 0.2, 0.2
    return noise(rng, h, w, max(h, w) / 3), 0.2


def cluttered_background(rng, h, w, label=0):
    """An indoor, outdoor or abstract backdrop with a few textured clutter shapes, all ``label``."""
    c = Canvas(h, w, label)
    everything = np.ones((h, w), bool)
    yh = int(h * rng.uniform(0.35, 0.65))
    top, bottom = np.zeros((h, w), bool), np.zeros((h, w), bool)
    top[:yh], bottom[yh:] = True, True
    style = int(rng.integers(3))
    if style == 0:  # room: wall over floor
        wall_tex = (stripes(h, w, rng.uniform(4, 10)) if rng.random() < 0.4
                    else noise(rng, h, w, rng.uniform(2, 8)))
        c.fill(top, colour(rng, pick(rng, WALLS)), label, wall_tex, 0.06)
        floor_tex = stripes(h, w, rng.uniform(4, 9), np.pi / 2 + rng.uniform(-0.3, 0.3)) \
            + 0.5 * noise(rng, h, w, 1)
        c.fill(bottom, colour(rng, pick(rng, FLOORS)), label, floor_tex, 0.12)
    elif style == 1:  # outdoors: sky over ground, distant hills
        sky0, sky1 = colour(rng, pick(rng, SKIES)), colour(rng, (215, 225, 235), 0.05)
        t = vgrad(h, w, 0, 1)
        c.fill(everything, sky0[:, None, None] * (1 - t) + sky1[:, None, None] * t, label)
        hill = np.zeros((h, w), np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            cv2.ellipse(hill, (int(rng.uniform(0, w)), yh), (int(rng.uniform(0.2, 0.6) * w),
                                                             int(rng.uniform(0.05, 0.2) * h)),
                        0, 180, 360, 1, -1)
        c.fill(hill.astype(bool), colour(rng, (90, 115, 95), 0.2), label, noise(rng, h, w, 4), 0.15)
        c.fill(bottom, colour(rng, pick(rng, GROUNDS)), label,
               noise(rng, h, w, 1) + noise(rng, h, w, 8), 0.15)
    else:  # abstract: two colours blended by coarse noise
        a, b = colour(rng, pick(rng, CLUTTER), 0.25), colour(rng, pick(rng, WALLS), 0.25)
        t = (noise(rng, h, w, max(h, w) / 4) + 1) / 2
        c.fill(everything, a[:, None, None] * t + b[:, None, None] * (1 - t), label,
               noise(rng, h, w, 1), 0.08)
    for _ in range(int(rng.integers(3, 9))):
        cw, ch = rng.uniform(0.1, 0.5) * w, rng.uniform(0.1, 0.5) * h
        x0, y0 = rng.uniform(-0.1 * w, w - 0.5 * cw), rng.uniform(-0.1 * h, h - 0.5 * ch)
        s = Sprite(ch, cw)
        shape = int(rng.integers(3))
        if shape == 0:
            region = s.rect(0, 0, s.w, s.h)
        elif shape == 1:
            region = s.ellipse(s.w / 2, s.h / 2, s.w / 2, s.h / 2)
        else:
            region = s.poly(rng.uniform(0, 1, (int(rng.integers(3, 7)), 2)) * (s.w, s.h))
        tex, amp = _random_texture(rng, s.h, s.w)
        s.fill(region, colour(rng, pick(rng, CLUTTER), 0.25, 15), tex, amp)
        c.paste(s, x0, y0, label)
    return c


# ----------------------------------------------------------------------------------------------
# Files: argument checks, the ``.complete.json`` marker, image writers
# ----------------------------------------------------------------------------------------------
MARKER = '.complete.json'
MAX_IMAGES = 100_000


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def check_args(num_train, num_val, size, seed, min_side=64):
    """Validate the common generator arguments; returns ``size`` as a tuple of ints."""
    for name, v in (('num_train', num_train), ('num_val', num_val)):
        if not _is_int(v) or not 1 <= v <= MAX_IMAGES:
            raise ValueError(f'{name} must be an integer in [1, {MAX_IMAGES}], got {v!r}')
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(_is_int(v) and min_side <= v <= 4096 for v in size)):
        raise ValueError(f'size must be (height, width) with integers in [{min_side}, 4096], '
                         f'got {size!r}')
    if not _is_int(seed) or seed < 0:
        raise ValueError(f'seed must be an integer >= 0, got {seed!r}')
    return int(size[0]), int(size[1])


def reuse_or_reset(root, params, outputs, force):
    """True when ``root`` already holds exactly this generation; otherwise clear the old one.

    The marker is removed first and written last (``mark_complete``), so an interrupted run is
    never mistaken for a complete one. Only the generator's own ``outputs`` are deleted.
    """
    marker = Path(root) / MARKER
    if not force and marker.is_file():
        try:
            if json.loads(marker.read_text()) == params:
                return True
        except ValueError:
            pass
    marker.unlink(missing_ok=True)
    for name in outputs:
        shutil.rmtree(Path(root) / name, ignore_errors=True)
    return False


def mark_complete(root, params):
    (Path(root) / MARKER).write_text(json.dumps(params, indent=2, sort_keys=True) + '\n')


def write_rgb(path, img, jpeg_quality=None):
    """Write an RGB uint8 image with cv2 (which expects BGR); JPEG when ``jpeg_quality`` is set."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = [] if jpeg_quality is None else [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    if not cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), flags):
        raise OSError(f'could not write {path}')


def image_rng(seed, dataset_id, split_id, index):
    """The generator of one image: seeded by its own coordinates, independent of other images."""
    return np.random.default_rng([int(seed), dataset_id, split_id, int(index)])
