"""Objectives a defense maximises, as plain callables ``objective(images, feature_fn, generator) -> Tensor[B]``.

``feature_fn(pixels)`` returns the model's feature map(s) of un-normalised pixel images; ``generator`` (a CPU
``torch.Generator``) draws the views' random parameters.
"""
from typing import Callable, Optional, Sequence

import torch

from mmequi.loop import check_generator, check_images

from .loss import compute_equivariance_score
from .transforms import build_transforms, reference_transforms


class EquivarianceObjective:
    """The equivariance score of Eq. 2 (docs/method.md) under the identity view plus ``transforms``.

    Args:
        transforms: configs or :class:`~mmequi.equivariance.EquiTransform` instances (the identity view is
            implicit); None takes the first ``num_views`` of :func:`reference_transforms`.
        num_views: K, when ``transforms`` is None (8 for adversarially trained models, 6 for vanilla ones).
        pixel_range: pixel range of the images (the colour jitter view needs it).

    Example::

        >>> objective = EquivarianceObjective(num_views=4)
        >>> score = objective(pixels, feature_fn, torch.Generator().manual_seed(0))  # Tensor[B]
    """
    pooled = False

    def __init__(self, transforms: Optional[Sequence] = None, num_views: int = 8, pixel_range=(0.0, 255.0)):
        if transforms is None:
            transforms = reference_transforms(num_views, pixel_range=pixel_range)
        self.transforms = build_transforms(transforms)
        if not self.transforms:
            raise ValueError(f'{type(self).__name__} needs at least one transform besides the identity view')

    def __call__(self, images: torch.Tensor, feature_fn: Callable,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if not callable(feature_fn):
            raise ValueError(f'feature_fn must be callable, got {type(feature_fn).__name__}')
        return compute_equivariance_score(feature_fn, images, self.transforms, generator, self.pooled)

    def __repr__(self):
        return f'{type(self).__name__}(transforms={self.transforms!r})'


class InvarianceObjective(EquivarianceObjective):
    """Baseline: the same views, but each view's features are global-average pooled before the cosine (no
    inversion, no spatial constraint)."""
    pooled = True


class EquivarianceScorer:
    """The equivariance score of images for reports and :class:`~mmequi.evaluation.EquivarianceMetric`: no graph,
    same views for every stage when called with equally seeded generators.

    Example::

        >>> scorer = EquivarianceScorer()
        >>> scorer(pixels, feature_fn, torch.Generator().manual_seed(3))  # Tensor[B]
    """

    def __init__(self, transforms: Optional[Sequence] = None, num_views: int = 8):
        self.objective = EquivarianceObjective(transforms, num_views)

    def __call__(self, images: torch.Tensor, feature_fn: Callable,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
        check_generator(generator)
        with torch.no_grad():
            return self.objective(check_images(images).detach(), feature_fn, generator)
