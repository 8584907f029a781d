"""The objects of the synthetic scenes, each drawn on its own ``painter.Sprite`` and pasted later.

A drawer is ``f(rng, size)`` with ``size`` the sprite's longest side in px, unless its arguments
say otherwise (the street furniture). Objects face right (``Sprite.flip`` mirrors them) and stand
on the sprite's bottom edge. Where datasets share a class (person, car, bicycle, ...) they share
the drawer, so a person looks alike in the Cityscapes, VOC and COCO-format data.
"""
from __future__ import annotations

import numpy as np

from .painter import (BIKE_FRAMES, BUS_PAINTS, CAR_PAINTS, CHROME, CLUTTER, DOG_COATS, FACADES,
                      FOLIAGE, GLASS, HAIRS, HELMETS, HIVIS, MOTO_PAINTS, SHIRTS, SKIES, SKINS,
                      TRAIN_BANDS, TROUSERS, TRUCK_PAINTS, TYRE, Sprite, checker, colour, cylinder,
                      grid_cells, leaves, noise, pick, spokes, spots, sprite_of_height,
                      sprite_of_width, stripes, vgrad, window_grid)


# ----------------------------------------------------------------------------------------------
# People and vehicles
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
    s, w, _ = sprite_of_width(size, 0.64)
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
    s, w, _ = sprite_of_width(size, 0.62)
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
    s, w, h = sprite_of_width(size, 0.42)
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
    s, w, h = sprite_of_width(size, 0.36)
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


def truck(rng, size):
    """A side-view truck: tall ribbed cargo box, a cab with a window, three wheels."""
    s, w, h = sprite_of_width(size, 0.45)
    box = colour(rng, pick(rng, TRUCK_PAINTS), 0.1)
    cab = colour(rng, pick(rng, CAR_PAINTS), 0.1)
    s.fill(s.rect(0, 0, 0.72 * w, 0.78 * h), box,
           stripes(s.h, s.w, max(0.035 * w, 2), duty=0.3) * 0.6 + 0.3 * noise(rng, s.h, s.w, 3),
           0.15)
    s.fill(s.poly([(0.74 * w, 0.25 * h), (0.92 * w, 0.25 * h), (w, 0.5 * h), (w, 0.85 * h),
                   (0.74 * w, 0.85 * h)]), cab, vgrad(s.h, s.w, 0.4, -0.4), 0.25)
    s.fill(s.poly([(0.79 * w, 0.3 * h), (0.9 * w, 0.3 * h), (0.97 * w, 0.5 * h), (0.79 * w, 0.5 * h)]),
           colour(rng, GLASS, 0.15, 5))
    s.fill(s.rect(0, 0.76 * h, w, 0.86 * h), (45, 45, 48))
    r = 0.13 * h
    for cx in (0.12 * w, 0.26 * w, 0.86 * w):
        _wheel(s, (cx, h - r - 1), r, 0.45 * r, hub=(110, 110, 115))
    return s


def train(rng, size):
    """A side-view train / tram: very long light body, coloured band, windows, bogies, pantograph."""
    s, w, h = sprite_of_width(size, 0.22)
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


def aeroplane(rng, size):
    """White airliner in side view: fuselage with windows, coloured tail, swept wings, engine."""
    s, w, h = sprite_of_width(size, 0.5)
    body = colour(rng, (225, 228, 232), 0.08, 4)
    livery = colour(rng, pick(rng, ((200, 40, 40), (40, 70, 170), (240, 150, 30))), 0.1)
    shade = vgrad(s.h, s.w, 0.3, -0.3)
    s.fill(s.poly([(0.42 * w, 0.5 * h), (0.58 * w, 0.5 * h), (0.4 * w, 0.2 * h), (0.33 * w, 0.2 * h)]),
           body * 0.8, shade, 0.2)
    s.fill(s.poly([(0.02 * w, 0.04 * h), (0.11 * w, 0.04 * h), (0.22 * w, 0.52 * h),
                   (0.05 * w, 0.52 * h)]), livery)
    s.fill(s.ellipse(0.5 * w, 0.55 * h, 0.48 * w, 0.09 * w), body, shade, 0.25)
    s.fill(s.rect(0.1 * w, 0.6 * h, 0.9 * w, 0.63 * h), livery)
    s.fill(window_grid(s.h, s.w, 0.06 * h, 0.03 * w, 0.5, y0=0.52 * h - 0.03 * h)
           & s.rect(0.2 * w, 0.5 * h, 0.85 * w, 0.56 * h), GLASS)
    s.fill(s.poly([(0.9 * w, 0.5 * h), (0.96 * w, 0.5 * h), (0.98 * w, 0.54 * h), (0.9 * w, 0.54 * h)]),
           GLASS)
    s.fill(s.poly([(0.04 * w, 0.52 * h), (0.17 * w, 0.52 * h), (0.1 * w, 0.7 * h), (0.02 * w, 0.7 * h)]),
           body * 0.9)
    s.fill(s.poly([(0.4 * w, 0.6 * h), (0.6 * w, 0.6 * h), (0.42 * w, 0.98 * h), (0.34 * w, 0.98 * h)]),
           body * 0.95, shade, 0.2)
    s.fill(s.ellipse(0.5 * w, 0.78 * h, 0.07 * w, 0.035 * w), (150, 150, 155))
    return s


def boat(rng, size):
    """Sailing boat (white sails on a mast) or motor boat (cabin with windows) on a painted hull."""
    s, w, h = sprite_of_width(size, 0.8)
    hull = colour(rng, pick(rng, ((180, 40, 40), (30, 50, 110), (225, 225, 220), (140, 90, 50))))
    if rng.random() < 0.6:
        sail = colour(rng, (240, 235, 220), 0.05)
        seams = stripes(s.h, s.w, max(0.08 * h, 2), np.pi / 2, duty=0.1)
        s.fill(s.line((0.45 * w, 0.0), (0.45 * w, 0.66 * h), max(0.02 * w, 1)), (110, 80, 50))
        s.fill(s.poly([(0.47 * w, 0.04 * h), (0.47 * w, 0.62 * h), (0.88 * w, 0.62 * h)]), sail, seams,
               -0.1)
        s.fill(s.poly([(0.43 * w, 0.1 * h), (0.43 * w, 0.6 * h), (0.14 * w, 0.6 * h)]), sail * 0.92,
               seams, -0.1)
    else:
        s.fill(s.rect(0.3 * w, 0.38 * h, 0.72 * w, 0.66 * h), colour(rng, (230, 230, 225), 0.05))
        s.fill(s.rect(0.34 * w, 0.43 * h, 0.68 * w, 0.52 * h), GLASS)
        s.fill(s.line((0.6 * w, 0.2 * h), (0.6 * w, 0.4 * h), max(0.02 * w, 1)), (60, 60, 60))
    s.fill(s.poly([(0.0, 0.64 * h), (w, 0.64 * h), (0.88 * w, 0.94 * h), (0.1 * w, 0.94 * h)]), hull,
           vgrad(s.h, s.w, 0.3, -0.3), 0.2)
    s.fill(s.rect(0.02 * w, 0.64 * h, 0.98 * w, 0.69 * h), (235, 235, 230))
    return s


# ----------------------------------------------------------------------------------------------
# Animals: a four-legged body with presets, and a perched bird
# ----------------------------------------------------------------------------------------------
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


def dog(rng, size):
    """A dog: golden/brown/black/white fur, floppy dark ears, snout, tail up at an angle."""
    return quadruped(rng, size, pick(rng, DOG_COATS), 'fur', body=(1.0, 0.36),
                     legs=(0.42, 0.09), neck=(0.22, 50.0, 0.16), head=(0.36, 0.2), ears='floppy',
                     tail=(0.38, 35.0))


def cat(rng, size):
    return quadruped(rng, size, pick(rng, ((215, 135, 60), (130, 130, 135), (205, 195, 175))),
                       'tabby', body=(0.9, 0.3), legs=(0.32, 0.07), neck=(0.1, 45.0, 0.14),
                       head=(0.28, 0.25), ears='pointy', tail=(0.5, 60.0))


def cow(rng, size):
    return quadruped(rng, size, (235, 235, 230), 'spots', body=(1.0, 0.5), legs=(0.42, 0.11),
                       neck=(0.16, 15.0, 0.25), head=(0.34, 0.22), ears='side', tail=(0.5, -75.0),
                       second=pick(rng, ((30, 30, 30), (30, 30, 30), (125, 70, 35))))


def horse(rng, size):
    return quadruped(rng, size, pick(rng, ((140, 70, 30), (90, 55, 30), (40, 32, 30),
                                               (215, 210, 200))),
                       'smooth', body=(1.0, 0.38), legs=(0.6, 0.08), neck=(0.42, 60.0, 0.17),
                       head=(0.4, 0.16), ears='pointy', tail=(0.5, -60.0), mane=(30, 25, 22))


def sheep(rng, size):
    return quadruped(rng, size, (225, 220, 200), 'wool', body=(1.0, 0.62), legs=(0.28, 0.08),
                       neck=(0.1, 25.0, 0.2), head=(0.3, 0.22), ears='side', tail=(0.15, -60.0),
                       face=(35, 30, 30), leg_col=(35, 30, 30))


def bird(rng, size):
    """Perched bird: tilted body, darker feathered wing, round head, orange beak, thin legs."""
    s, w, h = sprite_of_width(size, 0.8)
    plumage = colour(rng, pick(rng, ((130, 90, 50), (90, 110, 145), (45, 45, 50))), 0.12)
    beak = colour(rng, (235, 165, 35), 0.1)
    for dx in (-0.04, 0.04):
        s.fill(s.line(((0.45 + dx) * w, 0.7 * h), ((0.45 + dx) * w, h), max(0.03 * w, 1)), beak * 0.8)
    s.fill(s.poly([(0.25 * w, 0.5 * h), (0.0, 0.72 * h), (0.08 * w, 0.78 * h), (0.3 * w, 0.62 * h)]),
           plumage * 0.7)
    tex = stripes(s.h, s.w, max(0.05 * w, 2), 2.3) + 0.5 * noise(rng, s.h, s.w, 1)
    s.fill(s.ellipse(0.45 * w, 0.52 * h, 0.3 * w, 0.18 * w, angle=-20), plumage, tex, 0.12)
    s.fill(s.ellipse(0.55 * w, 0.6 * h, 0.16 * w, 0.1 * w, angle=-20),
           colour(rng, pick(rng, ((215, 110, 50), (225, 215, 195))), 0.1))
    s.fill(s.ellipse(0.38 * w, 0.48 * h, 0.2 * w, 0.1 * w, angle=-25), plumage * 0.6, tex, 0.3)
    s.fill(s.circle(0.72 * w, 0.28 * h, 0.12 * w), plumage, tex, 0.1)
    s.fill(s.poly([(0.8 * w, 0.22 * h), (0.99 * w, 0.3 * h), (0.8 * w, 0.34 * h)]), beak)
    s.fill(s.circle(0.75 * w, 0.25 * h, max(0.02 * w, 1)), (10, 10, 10))
    return s


# ----------------------------------------------------------------------------------------------
# Things indoors
# ----------------------------------------------------------------------------------------------
def bottle(rng, size):
    """A glass bottle: shaded cylinder body, shoulder, neck, cap and a paper label."""
    s, w, h = sprite_of_height(size, 0.32)
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


def chair(rng, size):
    """Chair in front view: wooden (grain) or plastic; slatted backrest, seat, four legs."""
    s, w, h = sprite_of_height(size, 0.62)
    if rng.random() < 0.65:
        col = colour(rng, pick(rng, ((125, 78, 42), (165, 115, 65))), 0.12)
        tex = stripes(s.h, s.w, 2.5, np.pi / 2 + 0.1) + 0.5 * noise(rng, s.h, s.w, 2)
    else:
        col, tex = colour(rng, pick(rng, ((225, 225, 220), (200, 50, 40), (35, 35, 40)))), None
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
    s, w, h = sprite_of_width(size, 0.62)
    wood = colour(rng, pick(rng, ((120, 75, 40), (170, 120, 70))), 0.12)
    grain = stripes(s.h, s.w, 3, 0.05) + 0.5 * noise(rng, s.h, s.w, 2)
    lw = max(0.035 * w, 1.5)
    for x0, x1, y1 in ((0.2, 0.2, 0.85), (0.8, 0.8, 0.85), (0.06, 0.06, 1.0), (0.94, 0.94, 1.0)):
        s.fill(s.line((x0 * w, 0.4 * h), (x1 * w, y1 * h), lw), wood * 0.75, grain, 0.15)
    top = s.poly([(0.12 * w, 0.1 * h), (0.88 * w, 0.1 * h), (w, 0.45 * h), (0.0, 0.45 * h)])
    if rng.random() < 0.5:
        cloth = colour(rng, pick(rng, ((200, 40, 40), (40, 70, 160), (40, 130, 70))), 0.1)
        s.fill(top, np.full(3, 235.0), None)
        s.fill(top & (checker(s.h, s.w, max(0.06 * w, 2)) > 0), cloth)
        s.fill(s.rect(0.0, 0.45 * h, w, 0.62 * h), cloth * 0.9)  # hanging cloth
    else:
        s.fill(top, wood, grain, 0.15)
        s.fill(s.rect(0.0, 0.45 * h, w, 0.52 * h), wood * 0.7, grain, 0.15)
    return s


def pottedplant(rng, size):
    """Terracotta or ceramic pot with a rim, and a bushy plant of leaf ellipses (maybe flowers)."""
    s, w, h = sprite_of_height(size, 0.68)
    pot = colour(rng, pick(rng, ((185, 95, 55), (70, 90, 150), (225, 220, 210))), 0.1)
    leaf = colour(rng, (55, 125, 45), 0.15, 8)
    tex = leaves(rng, s.h, s.w, max(h / 40, 1.2))
    foliage = np.zeros((s.h, s.w), bool)
    for _ in range(int(rng.integers(7, 12))):
        a = rng.uniform(-1.3, 1.3)
        ln = rng.uniform(0.25, 0.45) * h
        cx, cy = 0.5 * w + np.sin(a) * 0.6 * ln, 0.62 * h - np.cos(a) * 0.6 * ln
        foliage |= s.ellipse(cx, cy, 0.09 * h, 0.5 * ln * 0.7, angle=np.degrees(a))
    s.fill(foliage, leaf, tex, 0.35)
    if rng.random() < 0.3:
        petal = colour(rng, pick(rng, ((230, 80, 120), (245, 220, 60), (240, 240, 240))))
        for _ in range(int(rng.integers(3, 7))):
            ys, xs = np.nonzero(foliage)
            j = int(rng.integers(len(ys)))
            s.fill(s.circle(xs[j], ys[j], 0.035 * h), petal)
    s.fill(s.poly([(0.24 * w, 0.66 * h), (0.76 * w, 0.66 * h), (0.68 * w, h), (0.32 * w, h)]), pot,
           cylinder(s.h, s.w), 0.2)
    s.fill(s.rect(0.2 * w, 0.62 * h, 0.8 * w, 0.7 * h), pot * 0.85)
    return s


def sofa(rng, size):
    """Upholstered sofa: back, two rolled arms, seat cushions, base and short legs."""
    s, w, h = sprite_of_width(size, 0.5)
    fabric = colour(rng, pick(rng, ((110, 60, 120), (60, 80, 130), (120, 115, 110),
                                         (140, 80, 50), (150, 40, 40))), 0.12)
    weave = 0.4 * checker(s.h, s.w, 1) + noise(rng, s.h, s.w, max(0.05 * w, 1))
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
    s, w, h = sprite_of_width(size, 0.8)
    dark = colour(rng, (28, 28, 32), 0.2, 3)
    s.fill(s.rect(0.45 * w, 0.7 * h, 0.55 * w, 0.92 * h), dark * 1.5)
    s.fill(s.ellipse(0.5 * w, 0.94 * h, 0.22 * w, 0.045 * w), dark * 1.5)
    s.fill(s.rect(0.0, 0.0, w, 0.72 * h), dark, vgrad(s.h, s.w, 0.3, -0.3), 0.3)
    screen = s.rect(0.05 * w, 0.05 * h, 0.95 * w, 0.66 * h)
    a, b = colour(rng, pick(rng, SKIES), 0.2), colour(rng, (240, 230, 200), 0.2, 30)
    t = (noise(rng, s.h, s.w, max(0.25 * w, 1)) + 1) / 2
    s.fill(screen, a * 1.1)
    s.rgb[:, screen] = (a[:, None] * t[screen] + b[:, None] * (1 - t[screen]))
    for _ in range(int(rng.integers(0, 3))):  # windows / picture elements on the screen
        x0, y0 = rng.uniform(0.1, 0.6) * w, rng.uniform(0.1, 0.4) * h
        s.fill(screen & s.rect(x0, y0, x0 + rng.uniform(0.15, 0.3) * w, y0 + rng.uniform(0.1, 0.2) * h),
               colour(rng, pick(rng, CLUTTER), 0.3, 40))
    return s


def clock(rng, size):
    """Wall clock: coloured rim, light face with twelve ticks, two hands and a centre pin."""
    s, d, _ = sprite_of_width(size, 1.0)
    c = (d - 1) / 2
    rim = colour(rng, pick(rng, ((30, 30, 30), (120, 75, 40), (190, 160, 70), (180, 40, 40))))
    s.fill(s.circle(c, c, c), rim, vgrad(s.h, s.w, 0.3, -0.3), 0.3)
    s.fill(s.circle(c, c, 0.85 * c), colour(rng, (240, 236, 225), 0.05), vgrad(s.h, s.w, -0.1, 0.1),
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


# ----------------------------------------------------------------------------------------------
# Street furniture
# ----------------------------------------------------------------------------------------------
def facade(rng, bw, bh, scale):
    """A building front: wall colour, window grid (some reflecting the sky), shop floor, ledge."""
    s = Sprite(bh, bw)
    wall = colour(rng, pick(rng, FACADES), 0.15)
    s.fill(s.rect(0, 0, s.w, s.h), wall, noise(rng, s.h, s.w, 5), 0.08)
    cell_h, cell_w = rng.uniform(9, 15) * scale, rng.uniform(7, 12) * scale
    fill = rng.uniform(0.45, 0.65)
    rows, row_id = grid_cells(s.h, cell_h, 0.3 * cell_h, fill)
    cols, col_id = grid_cells(s.w, cell_w, rng.uniform(0, cell_w), fill)
    windows = rows[:, None] & cols[None, :]
    reflect = rng.random((row_id.max() + 2, col_id.max() + 2)) < 0.2  # some windows mirror the sky
    lit = reflect[row_id - row_id.min(), :][:, col_id - col_id.min()]
    s.fill(windows & ~lit, colour(rng, (55, 65, 85), 0.2, 8), vgrad(s.h, s.w, -0.5, 0.5), 0.2)
    s.fill(windows & lit, colour(rng, (170, 185, 200), 0.1))
    s.fill(s.rect(0, s.h - 1.4 * cell_h, s.w, s.h), wall * 0.55, stripes(s.h, s.w, cell_w), 0.15)
    s.fill(s.rect(0, 0, s.w, max(2, 0.3 * cell_h)), wall * 0.7)
    return s


def tree(rng, height):
    """A street tree (vegetation): brown trunk and a canopy of leafy, shaded ellipses."""
    s, _, h = sprite_of_height(height, 0.7)
    cx = s.w / 2
    s.fill(s.rect(cx - 0.035 * h, 0.45 * h, cx + 0.035 * h, h), colour(rng, (95, 70, 50), 0.2),
           stripes(s.h, s.w, 2, np.pi / 2) * 0.5, 0.2)
    leaf = colour(rng, pick(rng, FOLIAGE), 0.15, 8)
    tex = leaves(rng, s.h, s.w, max(h / 40, 1.2)) + vgrad(s.h, s.w, 0.3, -0.3)
    canopy = s.ellipse(cx, 0.32 * h, 0.28 * h, 0.24 * h)
    for _ in range(int(rng.integers(3, 6))):
        canopy |= s.ellipse(cx + rng.uniform(-0.15, 0.15) * h, rng.uniform(0.15, 0.45) * h,
                            rng.uniform(0.1, 0.2) * h, rng.uniform(0.08, 0.16) * h)
    s.fill(canopy, leaf, tex, 0.45)
    return s


def pole(height, width, col):
    """A metal pole (street lights, sign posts) in ``col``, shaded like a cylinder."""
    s = Sprite(height, width)
    s.fill(s.rect(0, 0, s.w, s.h), col, cylinder(s.h, s.w), 0.3)
    return s


def traffic_light(rng, width):
    """A dark housing with three lamps, one of them lit."""
    s, w, _ = sprite_of_width(max(width, 6), 2.6)
    s.fill(s.rect(0, 0, s.w, s.h), colour(rng, (35, 38, 32), 0.2, 4))
    s.fill(s.rect(0, 0, s.w, s.h) & ~s.rect(1, 1, s.w - 1, s.h - 1), (215, 180, 40))  # yellow rim
    on = int(rng.integers(3))
    for i, lamp in enumerate(((235, 45, 35), (245, 175, 30), (40, 220, 110))):
        col = np.asarray(lamp, np.float32) * (1.0 if i == on else 0.3)
        s.fill(s.circle(s.w / 2, (0.5 + 0.8 * i) * w * 1.0 + 0.05 * w, 0.3 * w), col)
    return s


def traffic_sign(rng, size):
    """A road sign: red-rimmed white disc, blue disc with a white arrow, or yellow diamond."""
    s, d, _ = sprite_of_width(max(size, 6), 1.0)
    c, r = (d - 1) / 2, (d - 1) / 2
    kind = int(rng.integers(3))
    if kind == 0:
        s.fill(s.circle(c, c, r), (215, 35, 35))
        s.fill(s.circle(c, c, 0.7 * r), (240, 240, 235))
    elif kind == 1:
        s.fill(s.circle(c, c, r), colour(rng, (30, 80, 185), 0.1))
        s.fill(s.line((c, 1.6 * r), (c, 0.4 * r), max(0.25 * r, 1)), (240, 240, 240))
        s.fill(s.poly([(c - 0.45 * r, 0.7 * r), (c + 0.45 * r, 0.7 * r), (c, 0.2 * r)]), (240, 240, 240))
    else:
        diamond = [(c, 0), (d - 1, c), (c, d - 1), (0, c)]
        s.fill(s.poly(diamond), (25, 25, 25))
        s.fill(s.poly([(c, 0.2 * r), (2 * r - 0.2 * r, c), (c, 2 * r - 0.2 * r), (0.2 * r, c)]),
               colour(rng, (245, 205, 30), 0.08))
    return s


def stop_sign(rng, size):
    """Red octagon with a white border and a white word-like band of letters."""
    s, d, _ = sprite_of_width(size, 1.0)
    c = (d - 1) / 2
    octagon = [(c + c * np.cos(a), c + c * np.sin(a)) for a in np.pi / 8 + np.arange(8) * np.pi / 4]
    s.fill(s.poly(octagon), (240, 240, 240))
    inner = [(c + 0.86 * c * np.cos(a), c + 0.86 * c * np.sin(a))
             for a in np.pi / 8 + np.arange(8) * np.pi / 4]
    s.fill(s.poly(inner), colour(rng, (200, 30, 35), 0.12, 5), noise(rng, s.h, s.w, 2), 0.05)
    for i in range(4):  # four letter blocks with gaps
        x0 = c - 0.62 * c + i * 0.32 * c
        s.fill(s.rect(x0, c - 0.22 * c, x0 + 0.24 * c, c + 0.22 * c), (245, 245, 245))
        s.fill(s.rect(x0 + 0.08 * c, c - 0.08 * c, x0 + 0.16 * c, c + 0.08 * c),
               colour(rng, (200, 30, 35), 0.1))
    return s
