"""Drawing for the synthetic test bed: colours, textures, sprites, the canvas and backdrops.

The three dataset scenes (``cityscapes``, ``voc``, ``coco``) and the objects they show (``objects``)
are painted with these building blocks. Everything is numpy + cv2, and every random choice comes
from a passed ``numpy.random.Generator``: an image depends only on the generator it was given, never
on how many images came before it.

Colours are RGB floats in [0, 255]; textures are float32 ``(h, w)`` patterns in about [-1, 1] that
modulate a base colour as ``colour * (1 + amp * texture)``. Pixels are stored channel-first
``(3, h, w)`` while painting because numpy broadcasts a colour over a trailing axis of 3 slowly.
"""
from __future__ import annotations

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
DOG_COATS = ((200, 150, 80), (120, 75, 40), (45, 38, 32), (225, 220, 205))
FACADES = ((200, 185, 150), (150, 150, 150), (160, 95, 75), (215, 205, 180), (115, 120, 140))
FOLIAGE = ((60, 105, 40), (80, 120, 45), (45, 90, 55))
TRUCK_PAINTS = ((225, 225, 220), (230, 130, 40), (60, 110, 170), (190, 190, 185))


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


def sprite_of_width(width, aspect):
    """A sprite ``width`` px wide and ``aspect * width`` tall, with that width and height as floats
    (the units an object is drawn in)."""
    w = float(width)
    h = aspect * w
    return Sprite(h, w), w, h


def sprite_of_height(height, aspect):
    """A sprite ``height`` px tall and ``aspect * height`` wide, with that width and height as floats."""
    h = float(height)
    w = aspect * h
    return Sprite(h, w), w, h


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
# Placement and cluttered backgrounds (VOC, COCO)
# ----------------------------------------------------------------------------------------------
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
