"""Objectives a defense maximises, as plain callables ``objective(images, feature_fn, generator) -> Tensor[B]``.

``feature_fn(pixels)`` returns the model's feature map(s) of un-normalised pixel images; ``generator`` (a CPU
``torch.Generator``) draws the views' random parameters.
"""
from typing import Callable, Optional, Sequence

import torch

from mmequi.loop import check_generator, check_images

from .loss import aligned, compute_equivariance_score, equivariance_score_and_gradient
from .transforms import build_transforms, full_mask, reference_transforms


class EquivarianceObjective:
    """The equivariance score of Eq. 2 (docs/method.md) under the identity view plus ``transforms``.

    Args:
        transforms: configs or :class:`~mmequi.equivariance.EquiTransform` instances (the identity view is
            implicit); None takes the first ``num_views`` of :func:`reference_transforms`.
        num_views: K, when ``transforms`` is None (8 for adversarially trained models, 6 for vanilla ones).
        pixel_range: pixel range of the images (the colour jitter view needs it).
        views_per_step: k <= K: every call compares the identity with a random subset of k of the K views (an
            approximation: cost k instead of K; None = all K).
        max_view_area: downscale any transformed view whose area exceeds this multiple of the image's area before
            the model sees it (1.0: no view larger than the image; an approximation; None = no cap).
        batch_views: send the views of equal size (identity, flips, rotations) through the model together (exact).
            None: on CUDA only (on this project's CPU one call per view was as fast: docs/benchmark/README.md).

    Example::

        >>> objective = EquivarianceObjective(num_views=4)
        >>> score = objective(pixels, feature_fn, torch.Generator().manual_seed(0))  # Tensor[B]
    """
    align = staticmethod(aligned)  # how a view is made comparable to the identity (Eq. 2: the inverse transform)

    def __init__(self, transforms: Optional[Sequence] = None, num_views: int = 8, pixel_range=(0.0, 255.0),
                 views_per_step: Optional[int] = None, max_view_area: Optional[float] = None,
                 batch_views: Optional[bool] = None):
        if transforms is None:
            transforms = reference_transforms(num_views, pixel_range=pixel_range)
        self.transforms = build_transforms(transforms)
        if not self.transforms:
            raise ValueError(f'{type(self).__name__} needs at least one transform besides the identity view')
        if views_per_step is not None and not (isinstance(views_per_step, int) and not isinstance(views_per_step, bool)
                                               and 1 <= views_per_step <= len(self.transforms)):
            raise ValueError(f'views_per_step must be None or an integer in [1, {len(self.transforms)}] (the number of '
                             f'views), got {views_per_step!r}')
        if max_view_area is not None and not (isinstance(max_view_area, (int, float))
                                              and 0.01 <= max_view_area < 1e4):
            raise ValueError(f'max_view_area must be None or a number in [0.01, 1e4) (a view\'s largest area as a '
                             f'multiple of the image\'s), got {max_view_area!r}')
        if batch_views not in (None, True, False):
            raise ValueError(f'batch_views must be None (auto), True or False, got {batch_views!r}')
        self.views_per_step, self.max_view_area, self.batch_views = views_per_step, max_view_area, batch_views

    def batched(self, images):
        return images.is_cuda if self.batch_views is None else self.batch_views

    def views(self, generator: Optional[torch.Generator] = None) -> list:
        """The transforms of one call: all K, or a random subset of ``views_per_step`` (drawn from ``generator``)."""
        if self.views_per_step is None or self.views_per_step == len(self.transforms):
            return self.transforms
        chosen = torch.randperm(len(self.transforms), generator=generator)[:self.views_per_step].sort().values
        return [self.transforms[i] for i in chosen.tolist()]

    def __call__(self, images: torch.Tensor, feature_fn: Callable,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if not callable(feature_fn):
            raise ValueError(f'feature_fn must be callable, got {type(feature_fn).__name__}')
        return compute_equivariance_score(feature_fn, images, self.views(generator), generator, self.align,
                                          self.max_view_area, self.batched(images))

    def gradient(self, images: torch.Tensor, feature_fn: Callable,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """∂objective/∂images (B×C×H×W) with one view's graph in memory at a time; the same draws as a call."""
        if not callable(feature_fn):
            raise ValueError(f'feature_fn must be callable, got {type(feature_fn).__name__}')
        return equivariance_score_and_gradient(feature_fn, images, self.views(generator), generator, self.align,
                                               self.max_view_area, self.batched(images))[1]

    def __repr__(self):
        extra = ''.join(f', {k}={getattr(self, k)!r}' for k in ('views_per_step', 'max_view_area')
                        if getattr(self, k) is not None)
        return f'{type(self).__name__}(transforms={self.transforms!r}{extra})'


def pooled(transform, params, levels, sizes):
    """The invariance baseline's view: each feature level's global average, B×C×1×1, valid everywhere, whatever the
    transform (no inverse, no spatial constraint) -> list over levels of (features, mask)."""
    return [(f.mean((2, 3), keepdim=True), full_mask(f, (1, 1))) for f in levels]


class InvarianceObjective(EquivarianceObjective):
    """Baseline: the same views, but each view's features are global-average pooled before the cosine (no
    inversion, no spatial constraint)."""
    align = staticmethod(pooled)


class EquivarianceScorer:
    """The equivariance score of images for reports and :class:`~mmequi.evaluation.EquivarianceMetric`: the mean
    cosine over view pairs and feature levels, in [−1, 1] (1: the views agree exactly) whatever K and the number of
    levels (the value still depends on the views); no graph, same views for every stage when called with equally
    seeded generators.

    Example::

        >>> scorer = EquivarianceScorer()
        >>> scorer(pixels, feature_fn, torch.Generator().manual_seed(3))  # Tensor[B]
    """

    def __init__(self, transforms: Optional[Sequence] = None, num_views: int = 8):
        self.objective = EquivarianceObjective(transforms, num_views)  # all views, no cap: comparable scores

    def __call__(self, images: torch.Tensor, feature_fn: Callable,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
        check_generator(generator)
        if not callable(feature_fn):
            raise ValueError(f'feature_fn must be callable, got {type(feature_fn).__name__}')
        with torch.no_grad():
            images = check_images(images).detach()
            return compute_equivariance_score(feature_fn, images, self.objective.views(generator), generator,
                                              batch_views=self.objective.batched(images), reduction='mean')
