"""The equivariance score of docs/method.md, Eq. 2: how well the views ``f_i = g_i⁻¹(F(g_i(x)))`` agree.

Higher is more equivariant; its maximum is (number of view pairs) × (number of feature levels). The purifier
minimises its negative (Algorithm 1).
"""
import torch
import torch.nn.functional as F

from .transforms import build_transforms, full_mask


def _as_levels(features, what):
    """A feature map or a list/tuple of them (FPN levels) -> list of B×C×h×w tensors."""
    levels = [features] if isinstance(features, torch.Tensor) else features
    if not isinstance(levels, (list, tuple)) or not levels or not all(
            isinstance(f, torch.Tensor) and f.dim() == 4 for f in levels):
        raise ValueError(f'{what} must be a B×C×h×w tensor or a non-empty list/tuple of them, got {features!r:.200}')
    return list(levels)


def _pair_cosine(a, b, mask):
    """Cosine between the masked, flattened feature maps of two views, per image (Eq. 2's summand)."""
    a = F.normalize((a * mask).flatten(1), dim=1)
    b = F.normalize((b * mask).flatten(1), dim=1)
    return (a * b).sum(1)


def equivariance_score(views, masks=None):
    """Sum over all view pairs (i < j) and feature levels of the cosine similarity of the masked views -> Tensor[B].

    ``views``: list over views of B×C×h×w maps aligned to the identity view (or of lists over levels, each level at
    its own size). ``masks``: the same structure with B×1×h×w {0,1} validity masks, or None (all valid); a pair is
    compared where both its views are valid.
    """
    if not isinstance(views, (list, tuple)) or len(views) < 2:
        raise ValueError(f'equivariance_score needs a list of at least 2 views, got {type(views).__name__} '
                         f'of length {len(views) if isinstance(views, (list, tuple)) else "-"}')
    views = [_as_levels(v, f'view {i}') for i, v in enumerate(views)]
    if masks is None:
        masks = [[full_mask(f, f.shape[-2:]) for f in levels] for levels in views]
    if not isinstance(masks, (list, tuple)) or len(masks) != len(views):
        raise ValueError(f'masks must be None or a list with one entry per view ({len(views)})')
    masks = [_as_levels(m, f'mask of view {i}') for i, m in enumerate(masks)]
    reference = views[0]
    for i, (levels, level_masks) in enumerate(zip(views, masks)):
        if len(levels) != len(reference) or len(level_masks) != len(reference):
            raise ValueError(f'view {i} has {len(levels)} feature levels and {len(level_masks)} masks, '
                             f'view 0 has {len(reference)} levels')
        for level, (f, m, f0) in enumerate(zip(levels, level_masks, reference)):
            if f.shape != f0.shape:
                raise ValueError(f'feature shape mismatch at level {level}: view 0 is {tuple(f0.shape)}, view {i} is '
                                 f'{tuple(f.shape)} (views must be aligned to the identity view)')
            if m.shape != (f.shape[0], 1, *f.shape[-2:]):
                raise ValueError(f'mask of view {i}, level {level} has shape {tuple(m.shape)}, expected '
                                 f'{(f.shape[0], 1, *f.shape[-2:])}')
    score = reference[0].new_zeros(reference[0].shape[0])
    for i in range(len(views)):
        for j in range(i + 1, len(views)):
            for a, b, ma, mb in zip(views[i], views[j], masks[i], masks[j]):
                score = score + _pair_cosine(a, b, ma * mb)
    return score


def _pooled(levels):
    """Invariance baseline: each level's global average, B×C×1×1, valid everywhere."""
    return [(f.mean((2, 3), keepdim=True), full_mask(f, (1, 1))) for f in levels]


def view_features(feature_fn, images, transforms, generator=None, pooled=False):
    """Views of Eq. 2 -> (views, masks), each a list over views (identity first) of lists over feature levels.

    ``feature_fn(images)`` returns a B×C×h×w tensor or a list/tuple of them (levels). Every transform draws its own
    parameters for every image, so the transformed images go through ``feature_fn`` one at a time. With
    ``pooled=True`` (the invariance baseline) each view is the global average of the transformed image's features,
    B×C×1×1, with no inversion and no masks.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f'images must be a B×C×H×W tensor, got {getattr(images, "shape", type(images))}')
    transforms = build_transforms(transforms)
    identity = _as_levels(feature_fn(images), 'feature_fn output')
    sizes = [tuple(f.shape[-2:]) for f in identity]
    # Each view: a list over levels of (features, mask).
    views = [_pooled(identity) if pooled else [(f, full_mask(f, size)) for f, size in zip(identity, sizes)]]
    for t in transforms:
        per_image = []
        for image in images.split(1):
            params = t.sample(generator)
            levels = _as_levels(feature_fn(t.apply(image, params)), 'feature_fn output')
            if len(levels) != len(identity):
                raise ValueError(f'feature_fn returned {len(levels)} levels for {t!r}, {len(identity)} for the '
                                 'identity view')
            per_image.append(_pooled(levels) if pooled else
                             [t.invert(f, params, size) for f, size in zip(levels, sizes)])
        views.append([tuple(torch.cat(parts) for parts in zip(*level)) for level in zip(*per_image)])
    return [[f for f, _ in view] for view in views], [[m for _, m in view] for view in views]


def compute_equivariance_score(feature_fn, images, transforms, generator=None, pooled=False):
    """Equivariance score (Eq. 2) of ``images`` under the identity view plus ``transforms`` -> Tensor[B].
    ``pooled=True`` gives the invariance baseline's score instead."""
    return equivariance_score(*view_features(feature_fn, images, transforms, generator, pooled))
