"""Test-time defenses: the equivariance purifier (docs/method.md, Algorithm 1) and the baselines, each a
:class:`Defense` (the shared loop) with its own objective."""
from .base import Defense
from .purifiers import EquivariancePurifier, InvariancePurifier, RandomNoiseDefense
from .rotation import (RotationHead, RotationObjective, RotationPurifier, load_rotation_head, rotation_features,
                       rotation_loss, save_rotation_head)
from .tta import FlipScaleTTA, PurifiedTTA

__all__ = ['Defense', 'EquivariancePurifier', 'InvariancePurifier', 'RandomNoiseDefense', 'FlipScaleTTA', 'PurifiedTTA', 'RotationHead',
           'RotationObjective', 'RotationPurifier', 'rotation_loss', 'rotation_features', 'save_rotation_head',
           'load_rotation_head']
