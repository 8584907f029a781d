"""Transforms g of the image that know how to undo themselves on feature maps (docs/method.md, "Idea" and Eq. 2).

A view is ``f = g⁻¹(F(g(x)))``: :meth:`EquiTransform.apply` computes ``g(x)`` on pixel images (differentiable,
because the purifier back-propagates through it) and :meth:`EquiTransform.invert` computes ``g⁻¹`` on the feature
map of the transformed image, whatever its stride and channel count, resized to the identity view's feature size.
``invert`` also returns the validity mask ``m = g⁻¹(g(1)) > 0.5`` (rotation leaves the corners empty).

Parameters are drawn by :meth:`EquiTransform.sample`, one set per call (the caller draws one per image), from a
CPU ``torch.Generator`` only, as plain Python numbers: CPU and CUDA runs with the same seed see the same views.
"""
import copy
import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

from mmequi.registry import EQUI_TRANSFORMS, build


def uniform(low, high, generator=None):
    """One draw of U(low, high) as a float, from ``generator`` (CPU)."""
    return float(low + (high - low) * torch.rand((), generator=generator))


def resize(x, size):
    """Bilinear resize of B×C×h×w maps (no-op at the same size); align_corners=False keeps the image extents."""
    size = tuple(int(s) for s in size)
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


def full_mask(features, size):
    """All-valid B×1×h×w mask, in the features' dtype and device."""
    return features.new_ones((features.shape[0], 1, *size))


def _check_jitter(name, jitter):
    if jitter is None:
        return None
    if len(jitter) != 2 or not 0 < jitter[0] <= jitter[1]:
        raise ValueError(f'{name} must be None or (low, high) with 0 < low <= high, got {jitter!r}')
    return (float(jitter[0]), float(jitter[1]))


class EquiTransform:
    """Base class. Subclasses override :meth:`apply`, and :meth:`sample` / :meth:`invert` / :meth:`size_factor`
    where they need to. The default inverse only resizes back: right for resizes and photometric transforms.

    Example::

        >>> t = Rotate(max_angle=15)
        >>> params = t.sample(torch.Generator().manual_seed(0))      # {'angle': ...}
        >>> rotated = t.apply(images, params)                        # B×C×H×W pixels
        >>> aligned, mask = t.invert(model(rotated), params, (h, w))  # B×C'×h×w, B×1×h×w
    """

    def sample(self, generator: Optional[torch.Generator] = None) -> dict:
        """One parameter set (a dict of Python numbers)."""
        return {}

    def apply(self, images: torch.Tensor, params: dict) -> torch.Tensor:
        """g(x): B×C×H×W pixel images -> transformed images (differentiable)."""
        raise NotImplementedError

    def invert(self, features: torch.Tensor, params: dict, out_size) -> Tuple[torch.Tensor, torch.Tensor]:
        """Undo the transform on ``features`` (B×C×h'×w') -> (B×C×h×w features, B×1×h×w {0,1} mask), h×w = out_size."""
        return resize(features, out_size), full_mask(features, out_size)

    def size_factor(self, params):
        """(height, width) factors by which :meth:`apply` scales the image size."""
        return (1.0, 1.0)

    @property
    def keeps_size(self) -> bool:
        """Whether every view has the image's size (a model that takes one input size can take it)."""
        return type(self).size_factor is EquiTransform.size_factor

    def __repr__(self):
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items())
        return f'{type(self).__name__}({args})'


@EQUI_TRANSFORMS.register_module()
class Identity(EquiTransform):

    def apply(self, images, params):
        return images


@EQUI_TRANSFORMS.register_module()
class HFlip(EquiTransform):

    def apply(self, images, params):
        return images.flip(-1)

    def invert(self, features, params, out_size):
        return resize(features.flip(-1), out_size), full_mask(features, out_size)


@EQUI_TRANSFORMS.register_module()
class Resize(EquiTransform):
    """Bilinear resize: height × scale, width × scale·r with r ~ U(aspect_jitter) (None: r = 1).
    Never below ``min_size`` pixels, so ×0.3 of a tiny image still gives the model something to see."""

    def __init__(self, scale=2.0, aspect_jitter=(0.8, 1.2), min_size=8):
        if not scale > 0:
            raise ValueError(f'Resize scale must be > 0, got {scale!r}')
        if int(min_size) < 1:
            raise ValueError(f'Resize min_size must be >= 1, got {min_size!r}')
        self.scale = float(scale)
        self.aspect_jitter = _check_jitter('Resize aspect_jitter', aspect_jitter)
        self.min_size = int(min_size)

    def sample(self, generator=None):
        ratio = 1.0 if self.aspect_jitter is None else uniform(*self.aspect_jitter, generator)
        return {'ratio': ratio}

    def size_factor(self, params):
        return (self.scale, self.scale * params['ratio'])

    def apply(self, images, params):
        fy, fx = self.size_factor(params)
        h, w = images.shape[-2:]
        size = (max(self.min_size, round(h * fy)), max(self.min_size, round(w * fx)))
        return resize(images, size)


@EQUI_TRANSFORMS.register_module()
class WidthResize(Resize):
    """Width-only resize by r ~ U(aspect_jitter) (views 7 and 8 of the reference)."""

    def __init__(self, aspect_jitter=(0.8, 1.2), min_size=8):
        super().__init__(scale=1.0, aspect_jitter=aspect_jitter, min_size=min_size)


def rotate(x, degrees):
    """Rotate B×C×h×w maps about their centre by ``degrees`` (bilinear, zero fill). The affine matrix is written in
    grid_sample's normalised coordinates but corrected for the aspect ratio, so it is a true rotation of a
    non-square map and ``rotate(·, -θ)`` is its exact inverse."""
    h, w = x.shape[-2:]
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    matrix = x.new_tensor([[c, -s * h / w, 0.0], [s * w / h, c, 0.0]]).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(matrix, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)


@EQUI_TRANSFORMS.register_module()
class Rotate(EquiTransform):
    """Rotation by θ ~ U(−max_angle, max_angle) degrees; undone by rotating the features by −θ."""

    def __init__(self, max_angle=15.0):
        if not 0 <= max_angle <= 180:
            raise ValueError(f'Rotate max_angle must be in [0, 180] degrees, got {max_angle!r}')
        self.max_angle = float(max_angle)

    def sample(self, generator=None):
        return {'angle': uniform(-self.max_angle, self.max_angle, generator)}

    def apply(self, images, params):
        return rotate(images, params['angle'])

    def invert(self, features, params, out_size):
        angle = params['angle']
        back = rotate(features, -angle)
        # m = g⁻¹(g(1)) > 0.5 at feature resolution: the locations that saw image content in both frames.
        ones = features.new_ones((1, 1, *features.shape[-2:]))
        valid = (resize(rotate(rotate(ones, angle), -angle), out_size) > 0.5).to(features.dtype)
        return resize(back, out_size), valid.expand(features.shape[0], 1, *out_size)


_GRAY_RGB = (0.299, 0.587, 0.114)
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def _gray(rgb):
    weights = rgb.new_tensor(_GRAY_RGB).view(1, 3, 1, 1)
    return (rgb * weights).sum(1, keepdim=True)


def _shift_hue(rgb, shift):
    """Hue shift by ``shift`` turns as a rotation of the chroma plane in YIQ space: linear, so its gradient is
    smooth everywhere (an HSV round trip has kinks the purifier would have to step through)."""
    to_yiq = torch.tensor(_RGB_TO_YIQ, dtype=torch.float64)
    c, s = math.cos(2 * math.pi * shift), math.sin(2 * math.pi * shift)
    turn = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=torch.float64)
    matrix = (torch.linalg.inv(to_yiq) @ turn @ to_yiq).to(rgb)
    return torch.einsum('ij,bjhw->bihw', matrix, rgb)


@EQUI_TRANSFORMS.register_module()
class ColorJitter(EquiTransform):
    """Colour jitter as torchvision's (random order of brightness / contrast / saturation / hue, then grayscale with
    probability ``grayscale_p``). An invariance: the inverse only resizes. Works on pixel images in
    ``pixel_range`` with ``channel_order`` 'bgr' (OpenMMLab pipelines) or 'rgb'."""

    def __init__(self, brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2, grayscale_p=0.2,
                 channel_order='bgr', pixel_range=(0.0, 255.0)):
        for name, value in (('brightness', brightness), ('contrast', contrast), ('saturation', saturation)):
            if value < 0:
                raise ValueError(f'ColorJitter {name} must be >= 0, got {value!r}')
        if not 0 <= hue <= 0.5:
            raise ValueError(f'ColorJitter hue must be in [0, 0.5], got {hue!r}')
        if not 0 <= grayscale_p <= 1:
            raise ValueError(f'ColorJitter grayscale_p must be in [0, 1], got {grayscale_p!r}')
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(f"ColorJitter channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
        if len(pixel_range) != 2 or not pixel_range[0] < pixel_range[1]:
            raise ValueError(f'ColorJitter pixel_range must be (low, high) with low < high, got {pixel_range!r}')
        self.brightness, self.contrast, self.saturation = float(brightness), float(contrast), float(saturation)
        self.hue, self.grayscale_p = float(hue), float(grayscale_p)
        self.channel_order = channel_order
        self.pixel_range = (float(pixel_range[0]), float(pixel_range[1]))

    def sample(self, generator=None):
        def factor(strength):
            return uniform(max(0.0, 1 - strength), 1 + strength, generator)
        return {'brightness': factor(self.brightness), 'contrast': factor(self.contrast),
                'saturation': factor(self.saturation), 'hue': uniform(-self.hue, self.hue, generator),
                'grayscale': bool(torch.rand((), generator=generator) < self.grayscale_p),
                'order': torch.randperm(4, generator=generator).tolist()}

    def apply(self, images, params):
        if images.shape[1] != 3:
            raise ValueError(f'ColorJitter needs 3-channel images, got {images.shape[1]} channels')
        low, high = self.pixel_range
        rgb = (images - low) / (high - low)
        if self.channel_order == 'bgr':
            rgb = rgb.flip(1)
        ops = (lambda x: x * params['brightness'],
               lambda x: params['contrast'] * x + (1 - params['contrast']) * _gray(x).mean((1, 2, 3), keepdim=True),
               lambda x: params['saturation'] * x + (1 - params['saturation']) * _gray(x),
               lambda x: _shift_hue(x, params['hue']))
        for index in params['order']:
            rgb = ops[index](rgb).clamp(0, 1)
        if params['grayscale']:
            rgb = _gray(rgb).expand_as(rgb)
        if self.channel_order == 'bgr':
            rgb = rgb.flip(1)
        return rgb * (high - low) + low


@EQUI_TRANSFORMS.register_module()
class Compose(EquiTransform):
    """Apply ``transforms`` in order; undo them in reverse order, multiplying their validity masks."""

    def __init__(self, transforms):
        self.transforms = build_transforms(transforms)
        if not self.transforms:
            raise ValueError('Compose needs at least one transform')

    def sample(self, generator=None):
        return {'steps': [t.sample(generator) for t in self.transforms]}

    def apply(self, images, params):
        for t, p in zip(self.transforms, params['steps']):
            images = t.apply(images, p)
        return images

    @property
    def keeps_size(self):
        return all(t.keeps_size for t in self.transforms)

    def size_factor(self, params):
        fy, fx = 1.0, 1.0
        for t, p in zip(self.transforms, params['steps']):
            ky, kx = t.size_factor(p)
            fy, fx = fy * ky, fx * kx
        return (fy, fx)

    def invert(self, features, params, out_size):
        steps = list(zip(self.transforms, params['steps']))
        # Feature size before each step: out_size scaled by the resizes applied before it. A rotation must be undone
        # in the frame it was applied in, so every undo lands in its step's input frame, not directly in out_size.
        targets, fy, fx = [], 1.0, 1.0
        for t, p in steps:
            targets.append((max(1, round(out_size[0] * fy)), max(1, round(out_size[1] * fx))))
            ky, kx = t.size_factor(p)
            fy, fx = fy * ky, fx * kx
        targets[0] = tuple(out_size)
        # The mask travels as an extra channel, so the later undos (flip, rotation) move it with the features.
        mask = full_mask(features, features.shape[-2:])
        for (t, p), target in reversed(list(zip(steps, targets))):
            both, step_mask = t.invert(torch.cat([features, mask], 1), p, target)
            features = both[:, :-1]
            mask = (both[:, -1:] > 0.5).to(features.dtype) * step_mask
        return features, mask


def build_transform(cfg) -> EquiTransform:
    """An :class:`EquiTransform` from a dict config (``dict(type='Rotate', max_angle=15)``) or an instance."""
    if isinstance(cfg, EquiTransform):
        return cfg
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f"an equivariance transform must be a dict with a 'type' key or an EquiTransform, "
                         f'got {cfg!r}')
    return build(EQUI_TRANSFORMS, cfg)


def build_transforms(cfgs) -> List[EquiTransform]:
    """A list of :class:`EquiTransform` from a list of dict configs and/or instances."""
    if not isinstance(cfgs, (list, tuple)):
        raise ValueError(f'transforms must be a list of configs or EquiTransforms, got {type(cfgs).__name__}')
    return [build_transform(cfg) for cfg in cfgs]


_REFERENCE_JITTER = (0.8, 1.2)


def reference_transforms(num_views: int = 8, pixel_range=(0.0, 255.0), channel_order: str = 'bgr') -> List[dict]:
    """Configs of views 1..num_views of docs/method.md's reference views (the identity view 0 is implicit).
    K = 8 for adversarially trained models, the first six for vanilla ones."""
    jitter = _REFERENCE_JITTER
    views = [
        dict(type='Resize', scale=2.0, aspect_jitter=jitter),
        dict(type='Resize', scale=0.3, aspect_jitter=jitter),
        dict(type='Resize', scale=2.0, aspect_jitter=jitter),
        dict(type='Resize', scale=0.5, aspect_jitter=jitter),
        dict(type='Rotate', max_angle=15.0),
        dict(type='Rotate', max_angle=15.0),
        dict(type='Compose', transforms=[
            dict(type='ColorJitter', brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2, grayscale_p=0.2,
                 channel_order=channel_order, pixel_range=tuple(pixel_range)),
            dict(type='WidthResize', aspect_jitter=jitter)]),
        dict(type='Compose', transforms=[dict(type='WidthResize', aspect_jitter=jitter), dict(type='HFlip')]),
    ]
    if isinstance(num_views, bool) or not isinstance(num_views, int) or not 1 <= num_views <= len(views):
        raise ValueError(f'num_views (K) must be an integer in [1, {len(views)}], got {num_views!r}')
    return copy.deepcopy(views[:num_views])
