"""Equivariance at inference time: transforms that know their inverse, the score of Eq. 2, and the purifier."""
from .loss import compute_equivariance_score, equivariance_score, view_features
from .purifier import EquivariancePurifier, RandomNoiseDefense
from .rotation import RotationHead, RotationPurifier, load_rotation_head, rotation_loss, save_rotation_head
from .transforms import (ColorJitter, Compose, EquiTransform, HFlip, Identity, Resize, Rotate, WidthResize,
                         build_transform, build_transforms, reference_transforms)

__all__ = [
    'EquiTransform', 'Identity', 'HFlip', 'Resize', 'WidthResize', 'Rotate', 'ColorJitter', 'Compose',
    'build_transform', 'build_transforms', 'reference_transforms',
    'equivariance_score', 'view_features', 'compute_equivariance_score',
    'EquivariancePurifier', 'RandomNoiseDefense',
    'RotationHead', 'RotationPurifier', 'rotation_loss', 'save_rotation_head', 'load_rotation_head',
]
