"""Equivariance at inference time: transforms that know their inverse, the score of Eq. 2 and the objectives
built on it (docs/method.md)."""
from .loss import compute_equivariance_score, equivariance_score, view_features
from .objectives import EquivarianceObjective, EquivarianceScorer, InvarianceObjective
from .transforms import (ColorJitter, Compose, EquiTransform, HFlip, Identity, Resize, Rotate, WidthResize,
                         build_transform, build_transforms, reference_transforms)

__all__ = [
    'EquiTransform', 'Identity', 'HFlip', 'Resize', 'WidthResize', 'Rotate', 'ColorJitter', 'Compose',
    'build_transform', 'build_transforms', 'reference_transforms',
    'equivariance_score', 'view_features', 'compute_equivariance_score',
    'EquivarianceObjective', 'InvarianceObjective', 'EquivarianceScorer',
]
