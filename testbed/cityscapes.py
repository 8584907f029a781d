"""Synthetic street scenes written in the Cityscapes format (19 train ids, 255 = ignore).

A scene is a view down a street: sky, building facades with windows converging to a vanishing
point, a road with lane marks between two tiled sidewalks, and things standing on the ground
(trees, poles with lights and signs, walls, fences, vehicles, people) sized by their distance and
painted far-to-near so nearer things occlude farther ones. Every image includes the object class
``index % 14`` plus a random handful, so all 19 classes occur across a split of >= 14 images.
``files.generate_cityscapes`` writes the scenes to disk.
"""
from __future__ import annotations

import cv2
import numpy as np

from . import painter as P
from .objects import (bicycle, bus, car, facade, motorbike, person, pole, rider, traffic_light,
                      traffic_sign, train, tree, truck)

CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
                      'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car',
                      'truck', 'bus', 'train', 'motorcycle', 'bicycle')
(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY, PERSON, RIDER,
 CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)
IGNORE = 255
# Classes that are not part of every scene; each image gets ``index % 14`` plus random others.
OBJECT_CLASSES = (WALL, FENCE, POLE, LIGHT, SIGN, TERRAIN, PERSON, RIDER, CAR, TRUCK, BUS, TRAIN,
                  MOTORCYCLE, BICYCLE)
METAL = (150, 150, 155)  # poles and their arms


class Street:
    """Perspective geometry of one street: ground lines from the vanishing point (vx, yh).

    ``u = (y - yh) / (h - yh)`` is the nearness of a ground row (0 at the horizon, 1 at the
    bottom); an object's size scales with the ``u`` of its foot.
    """

    def __init__(self, rng, h, w):
        self.h, self.w = h, w
        self.yh = h * rng.uniform(0.38, 0.48)
        self.vx = w * rng.uniform(0.38, 0.62)
        self.road = (self.vx - w * rng.uniform(0.5, 0.8), self.vx + w * rng.uniform(0.5, 0.8))
        self.outer = (self.road[0] - w * rng.uniform(0.3, 0.6),
                      self.road[1] + w * rng.uniform(0.3, 0.6))
        self.road_top, self.outer_top = 0.012 * w, 0.05 * w

    def y(self, u):
        return self.yh + u * (self.h - self.yh)

    def x(self, u, side, frac):
        """Ground x at nearness ``u`` on ``side`` (0 left, 1 right): frac 0 = road edge, 1 = outer."""
        sign = 1 if side else -1
        road = self.vx + sign * self.road_top + (self.road[side] - self.vx - sign * self.road_top) * u
        outer = self.vx + sign * self.outer_top + (self.outer[side] - self.vx - sign * self.outer_top) * u
        return road + frac * (outer - road)

    def u_of_x_outer(self, x, side):
        """Nearness where the outer sidewalk line reaches column ``x``."""
        sign = 1 if side else -1
        top = self.vx + sign * self.outer_top
        return max((x - top) / (self.outer[side] - top), 0.0)

    def visible_u(self, side, frac, margin=0.03):
        """Largest nearness at which the sidewalk line ``frac`` is still inside the frame."""
        x0, x1 = self.x(0, side, frac), self.x(1, side, frac)
        edge = self.w * (1 - margin) if side else self.w * margin
        return 1.0 if (x1 - edge) * (1 if side else -1) <= 0 else (edge - x0) / (x1 - x0)

    def sidewalk_spot(self, rng, side, f_lo, f_hi, u_lo, u_hi):
        """A random visible ground point (u, x) on a sidewalk, nearness within [u_lo, u_hi]."""
        f = rng.uniform(f_lo, f_hi)
        u = rng.uniform(u_lo, max(min(u_hi, self.visible_u(side, f)), u_lo))
        return u, self.x(u, side, f)

    def band(self, u0, u1, side, f0, f1):
        """Ground quadrilateral between nearness u0..u1 and lateral fractions f0..f1."""
        return [(self.x(u0, side, f0), self.y(u0)), (self.x(u1, side, f0), self.y(u1)),
                (self.x(u1, side, f1), self.y(u1)), (self.x(u0, side, f1), self.y(u0))]


# ---------------------------------------------------------------------------------- background
def _sky(c, rng, st):
    h, w = c.h, c.w
    top, low = P.colour(rng, (75, 125, 190), 0.15), P.colour(rng, (175, 200, 225), 0.08)
    if rng.random() < 0.3:  # overcast
        top, low = top * 0.4 + 150, low * 0.5 + 100
    t = np.clip(P.vgrad(h, w, 0, 1) / max(st.yh / h, 0.1), 0, 1)
    img = top[:, None, None] * (1 - t) + low[:, None, None] * t
    cloud = np.clip(P.noise(rng, h, w, w / 6) + 0.4 * P.noise(rng, h, w, w / 20) - 0.25, 0, 1)
    img = img * (1 - cloud) + 235 * cloud
    c.fill(np.ones((h, w), bool), img, SKY)


def _buildings(c, rng, st):
    """Contiguous facades on both sides, lower towards the vanishing point, plus a distant block."""
    w = c.w
    skyline = rng.uniform(0.0, 0.3) * st.yh
    far = facade(rng, 2 * st.outer_top + 2, 0.25 * st.yh, 0.4)  # distant block at the vp
    c.paste(far, st.vx - st.outer_top - 1, st.yh + 2 - far.h, BUILDING)
    for side in (0, 1):
        sign = 1 if side else -1
        x = st.vx + sign * st.outer_top
        while -5 < x < w + 5:
            near_x = x + sign * rng.uniform(0.14, 0.34) * w
            nearness = min(abs(near_x - st.vx) / (0.5 * w), 1.0)
            top = st.yh - (st.yh - skyline) * min(0.35 + 0.75 * nearness, 1.0) * rng.uniform(0.8, 1.1)
            base = st.y(st.u_of_x_outer(near_x, side)) + 2  # down to where the sidewalk covers it
            x_lo, x_hi = sorted((x, near_x))
            c.paste(facade(rng, x_hi - x_lo + 1, base - top + 1, 0.5 + 0.7 * nearness), x_lo, top,
                    BUILDING)
            x = near_x


def _ground(c, rng, st):
    """Sidewalks (tiles), the road (asphalt, lane marks, maybe a zebra crossing) and curbs."""
    h, w = c.h, c.w
    pave = P.colour(rng, (175, 155, 165), 0.1)
    tiles = lambda hh, ww: (P.noise(rng, hh, ww, 1) * 0.5 + P.noise(rng, hh, ww, 5) * 0.5
                            - 1.2 * P.joints(hh, ww, rng.integers(4, 7), rng.integers(7, 12)))
    c.fill_poly([(st.x(1.5, 0, 1), st.y(1.5)), (st.vx - st.outer_top, st.yh),
                 (st.vx + st.outer_top, st.yh), (st.x(1.5, 1, 1), st.y(1.5))], pave, SIDEWALK,
                tiles, 0.1)
    asphalt = P.colour(rng, (85, 80, 92), 0.12)
    road = [(st.road[0], h), (st.vx - st.road_top, st.yh), (st.vx + st.road_top, st.yh),
            (st.road[1], h)]
    c.fill_poly(road, asphalt, ROAD,
                lambda hh, ww: P.noise(rng, hh, ww, 1) + 0.6 * P.noise(rng, hh, ww, 12), 0.12)
    c.fill_polys([st.band(0, 1, side, -0.02, 0.0) for side in (0, 1)],
                 P.colour(rng, (200, 195, 195), 0.08), SIDEWALK)  # curbs

    def quad(u0, u1, d0, d1):  # road patch between nearness u0..u1 and offsets d0..d1 from centre
        mid = lambda u, d: st.x(u, 0, 0) + (st.x(u, 1, 0) - st.x(u, 0, 0)) * (0.5 + d)
        return [(mid(u0, d0), st.y(u0)), (mid(u1, d0), st.y(u1)), (mid(u1, d1), st.y(u1)),
                (mid(u0, d1), st.y(u0))]

    k0 = rng.uniform(0, 1)
    marks = [quad(0.02, 1.2, -0.46, -0.44), quad(0.02, 1.2, 0.44, 0.46)]  # solid edge lines
    for k in range(12):  # centre dashes equally spaced in depth: 1/u is linear in distance
        u_far, u_near = 1 / (1 + 0.9 * (k + k0 + 0.5)), 1 / (1 + 0.9 * (k + k0))
        if u_far > 0.05:
            marks.append(quad(u_far, u_near, -0.012, 0.012))
    if rng.random() < 0.3:  # zebra crossing
        u0 = rng.uniform(0.5, 0.8)
        marks += [quad(u0, u0 + 0.12, -0.45 + i * 0.06, -0.45 + (i + 1) * 0.06) for i in range(0, 16, 2)]
    c.fill_polys(marks, P.colour(rng, (225, 225, 215), 0.08), ROAD)


# ---------------------------------------------------------------------------------- things
def _band_range(rng, st, side, f):
    """A stretch u0..u1 of the sidewalk line ``f`` that is (mostly) inside the frame."""
    u_max = min(1.3, st.visible_u(side, f) + 0.1)
    u0 = rng.uniform(0.03, 0.5 * u_max)
    return u0, min(u_max, u0 + rng.uniform(0.3, 0.8))


def _upright(st, side, f, u0, u1, height):
    """Polygon of a vertical surface (wall, fence, hedge) standing on sidewalk line ``f``."""
    return [(st.x(u0, side, f), st.y(u0)), (st.x(u1, side, f), st.y(u1)),
            (st.x(u1, side, f), st.y(u1) - height * u1), (st.x(u0, side, f), st.y(u0) - height * u0)]


def _terrain(c, rng, st, side):
    """Grass: a verge by the curb or a strip along the outer edge; yellow-green, fine blades."""
    grass = P.colour(rng, (145, 170, 85), 0.12)
    tex = lambda hh, ww: (0.6 * P.stripes(hh, ww, rng.uniform(2, 3.5)) * P.noise(rng, hh, ww, 3)
                          + 0.5 * P.noise(rng, hh, ww, 1) + 0.4 * P.noise(rng, hh, ww, 8))
    f0, f1 = (0.03, rng.uniform(0.3, 0.5)) if rng.random() < 0.5 else (rng.uniform(0.2, 0.5), 1.05)
    c.fill_poly(st.band(rng.uniform(0.0, 0.3), 1.5, side, f0, f1), grass, TERRAIN, tex, 0.25)


def _treeline(c, rng, st, side):
    """A park side: a wall of foliage along the outer sidewalk edge, buildings peeking above."""
    us = np.linspace(0, 2, 24)
    tops = [st.y(u) - c.h * (0.12 + 0.45 * u) * rng.uniform(0.8, 1.2) for u in us]
    pts = ([(st.x(u, side, 1.0), st.y(u)) for u in us]
           + [(st.x(u, side, 1.0), t) for u, t in zip(us[::-1], tops[::-1])])
    c.fill_poly(pts, P.colour(rng, P.pick(rng, P.FOLIAGE), 0.15, 8), VEGETATION,
                lambda hh, ww: P.leaves(rng, hh, ww, 2.0) + P.vgrad(hh, ww, 0.3, -0.3), 0.4)


def _wall(c, rng, st, side):
    """A low brick / concrete wall along the building line."""
    f = rng.uniform(0.75, 1.0)
    pts = _upright(st, side, f, *_band_range(rng, st, side, f), rng.uniform(0.2, 0.4) * c.h)
    brick = rng.random() < 0.6
    tex = lambda hh, ww: (P.noise(rng, hh, ww, 1) * 0.4 + P.noise(rng, hh, ww, 6) * 0.4
                          - 1.3 * P.joints(hh, ww, 4 if brick else 12, 8 if brick else 20, 1, brick))
    c.fill_poly(pts, P.colour(rng, (125, 125, 140), 0.12), WALL, tex, 0.15)


def _fence(c, rng, st, side):
    """A fence on the sidewalk: wooden slats or metal mesh, partly see-through."""
    f = rng.uniform(0.45, 0.9)
    pts = np.asarray(_upright(st, side, f, *_band_range(rng, st, side, f),
                              rng.uniform(0.2, 0.35) * c.h))
    x0, y0 = np.floor(pts.min(0))
    s = P.Sprite(*(np.ceil(pts.max(0)) - (x0, y0) + 1)[::-1])
    region = s.poly(pts - (x0, y0))
    if rng.random() < 0.6:
        col = P.colour(rng, (175, 145, 115), 0.12)
        solid = ((P.stripes(s.h, s.w, rng.uniform(3, 5), duty=0.55) > 0)
                 | P.joints(s.h, s.w, s.h / 3, 1e4, 2))
    else:
        col = P.colour(rng, (140, 150, 140), 0.12)
        solid = ((P.stripes(s.h, s.w, 4, 0.8, duty=0.3) > 0)
                 | (P.stripes(s.h, s.w, 4, -0.8, duty=0.3) > 0))
    grain = P.noise(rng, s.h, s.w, 1)
    s.fill(region, col * 0.8, grain, 0.1, alpha=0.35)
    s.fill(region & solid, col, grain, 0.1)
    c.paste(s, x0, y0, FENCE)


def _hedge(c, rng, st, side):
    """A hedge (vegetation) along the building line."""
    pts = _upright(st, side, 1.0, *_band_range(rng, st, side, 1.0), rng.uniform(0.1, 0.2) * c.h)
    c.fill_poly(pts, P.colour(rng, P.pick(rng, P.FOLIAGE), 0.15, 8), VEGETATION,
                lambda hh, ww: P.leaves(rng, hh, ww, 1.5), 0.45)


# ---------------------------------------------------------------------------------- scene
def _choose_classes(rng, index):
    """``index % 14`` guarantees coverage of all object classes; the rest adds variety."""
    must = OBJECT_CLASSES[index % len(OBJECT_CLASSES)]
    others = [k for k in OBJECT_CLASSES if k != must]
    extra = rng.choice(others, size=int(rng.integers(5, 9)), replace=False)
    return {must, *map(int, extra)}


def render_scene(rng, index, h, w):
    """One street scene: returns (RGB uint8 image, uint8 train-id label map)."""
    classes = _choose_classes(rng, index)
    st = Street(rng, h, w)
    c = P.Canvas(h, w, SKY)
    _sky(c, rng, st)
    _buildings(c, rng, st)
    parks = [side for side in (0, 1) if rng.random() < 0.35]
    for side in parks:
        _treeline(c, rng, st, side)
    _ground(c, rng, st)
    if TERRAIN in classes:
        for side in (parks or ([0, 1] if rng.random() < 0.5 else [int(rng.integers(2))])):
            _terrain(c, rng, st, side)
    if rng.random() < 0.5:
        _hedge(c, rng, st, int(rng.integers(2)))
    if WALL in classes:
        _wall(c, rng, st, int(rng.integers(2)))
    if FENCE in classes:
        _fence(c, rng, st, int(rng.integers(2)))

    things = []  # (foot nearness u, draw function): painted far to near

    def add(u, cx, sprite, label):
        things.append((u, lambda: c.paste_on_ground(sprite, cx, st.y(u), label)))

    def on_road(u):
        lo, hi = st.x(u, 0, 0), st.x(u, 1, 0)
        return rng.uniform(lo + 0.15 * (hi - lo), hi - 0.15 * (hi - lo))

    for _ in range(int(rng.integers(1, 4))):  # street trees: vegetation is in every scene
        u, cx = st.sidewalk_spot(rng, int(rng.integers(2)), 0.5, 0.9, 0.2, 1.0)
        add(u, cx, tree(rng, u * h * rng.uniform(1.1, 1.6)), VEGETATION)
    n_poles = int(rng.integers(1, 4)) if POLE in classes else 0
    for i in range(max(n_poles, int(LIGHT in classes), int(SIGN in classes))):
        side = int(rng.integers(2))
        u, cx = st.sidewalk_spot(rng, side, 0.05, 0.25, 0.35, 1.0)
        pw = max(3.0, 0.06 * h * u)
        ph = min(u * h * rng.uniform(0.9, 1.3), st.y(u) - 0.05 * h - 2.5 * 2.4 * pw)  # light in frame
        light = LIGHT in classes and (i == 0 or rng.random() < 0.5)
        sign = SIGN in classes and (i == 0 or rng.random() < 0.5)
        arm = light and rng.random() < 0.4  # light hanging over the road from an arm
        things.append((u, lambda u=u, cx=cx, ph=ph, pw=pw, light=light, sign=sign, arm=arm,
                       side=side: _draw_pole(c, rng, st, u, cx, ph, pw, light, sign, arm, side)))
    vehicles = {CAR: (car, 0.3, 0.42, int(rng.integers(1, 4))), TRUCK: (truck, 0.45, 0.6, 1),
                BUS: (bus, 0.55, 0.75, 1), TRAIN: (train, 1.0, 1.5, 1),
                MOTORCYCLE: (motorbike, 0.2, 0.26, 1), BICYCLE: (bicycle, 0.2, 0.26, 1)}
    for label, (make, lo, hi, count) in vehicles.items():
        for _ in range(count if label in classes else 0):
            u = rng.uniform(0.25, 0.5) if label == TRAIN else rng.uniform(0.4, 0.95)
            sprite = make(rng, u * w * rng.uniform(lo, hi))
            if rng.random() < 0.5:
                sprite.flip()
            if label == BICYCLE and rng.random() < 0.5:  # parked on the sidewalk
                u, cx = st.sidewalk_spot(rng, int(rng.integers(2)), 0.1, 0.5, 0.45, 1.0)
            else:
                cx = on_road(u)
            add(u, cx, sprite, label)
    if RIDER in classes:
        u = rng.uniform(0.45, 1.0)
        bike_label = int(rng.choice([BICYCLE, MOTORCYCLE]))
        make = bicycle if bike_label == BICYCLE else motorbike
        bike = make(rng, u * w * rng.uniform(0.2, 0.26))
        body = rider(rng, bike)
        if rng.random() < 0.5:
            bike.flip(), body.flip()
        cx, foot = on_road(u), st.y(u)

        def draw_rider(bike=bike, body=body, cx=cx, foot=foot, bike_label=bike_label):
            c.paste_on_ground(bike, cx, foot, bike_label)
            c.paste_on_ground(body, cx, foot, RIDER)

        things.append((u, draw_rider))
    if PERSON in classes:
        for _ in range(int(rng.integers(1, 5))):
            if rng.random() < 0.7:
                u, cx = st.sidewalk_spot(rng, int(rng.integers(2)), 0.1, 0.8, 0.35, 1.0)
            else:
                u = rng.uniform(0.35, 1.0)
                cx = on_road(u)
            add(u, cx, person(rng, u * h * rng.uniform(0.5, 0.65)), PERSON)
    for _, draw in sorted(things, key=lambda t: t[0]):
        draw()
    if rng.random() < 0.25:  # ego-vehicle bonnet: Cityscapes labels it ignore
        hood = rng.uniform(0.07, 0.13) * h
        region = np.zeros((h, w), np.uint8)
        cv2.ellipse(region, (int(w / 2), int(h + 0.6 * hood)), (int(0.75 * w), int(1.6 * hood)), 0,
                    0, 360, 1, -1)
        c.fill(region.astype(bool), P.colour(rng, (40, 40, 45), 0.3), IGNORE,
               P.vgrad(h, w, 0, 1) * P.noise(rng, h, w, 8), 0.3)
    img = c.finish(rng)
    lbl = c.lbl
    lbl[0], lbl[-1], lbl[:, 0], lbl[:, -1] = IGNORE, IGNORE, IGNORE, IGNORE  # out-of-ROI rim
    return img, lbl


def _draw_pole(c, rng, st, u, cx, ph, pw, light, sign, arm, side):
    """A pole with an optional sign, and a traffic light on top or hanging from an arm."""
    foot = st.y(u)
    c.paste_on_ground(pole(ph, max(pw, 3), P.colour(rng, METAL, 0.12, 4)), cx, foot, POLE)
    top = foot - ph
    if light:
        lt = traffic_light(rng, 2.4 * pw)
        if arm:  # horizontal arm towards the road centre
            reach = (1 if side == 0 else -1) * rng.uniform(0.12, 0.25) * c.w * u
            x0, x1 = sorted((cx, cx + reach))
            bar = P.Sprite(max(pw * 0.7, 2), x1 - x0 + 1)
            bar.fill(bar.rect(0, 0, bar.w, bar.h), P.colour(rng, METAL, 0.12, 4))
            c.paste(bar, x0, top + pw, POLE)
            c.paste(lt, cx + reach - lt.w / 2, top + pw, LIGHT)
        else:
            c.paste(lt, cx - lt.w / 2, top - 0.3 * lt.h, LIGHT)
    if sign:
        sg = traffic_sign(rng, 0.18 * c.h * u + 6)
        c.paste(sg, cx - sg.w / 2, foot - 0.72 * ph, SIGN)
