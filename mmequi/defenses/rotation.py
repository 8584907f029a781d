"""Baseline: rotation self-supervision as a test-time purifier (Gidaris et al. 2018's pretext task, used for
purification as in Shi et al. 2021).

A small head predicts which of the four rotations (0°, 90°, 180°, 270°) an image was given, from the frozen model's
pooled features; ``tools/train_rotation_head.py`` trains it on the model's training data. At test time the purifier
finds a bounded correction that minimises the head's loss over the four rotations: the same loop, bounds and
interface as the equivariance purifier, with the rotation loss in place of the equivariance score.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmequi.equivariance.objectives import pooled
from mmequi.registry import DEFENSES

from .base import Defense

NUM_ROTATIONS = 4


def pool(features):
    """Feature map or list of levels -> B×C: the invariance baseline's pooled views, flattened and concatenated."""
    levels = [features] if isinstance(features, torch.Tensor) else list(features)
    return torch.cat([f.flatten(1) for f, _ in pooled(None, None, levels, None)], 1)


class RotationHead(nn.Module):
    """Pooled features (B×C) -> B×4 rotation logits: a two-layer MLP."""

    def __init__(self, in_channels, hidden=64):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(), nn.Linear(hidden, NUM_ROTATIONS))

    def forward(self, pooled):
        return self.mlp(pooled)


def rotation_features(feature_fn, images):
    """Pooled features of the four rotations of every image -> (4B×C, rotation-major; labels 4B). Rotating the
    pixels is exact (no interpolation) and needs no mask."""
    pooled = torch.cat([pool(feature_fn(torch.rot90(images, k, dims=(2, 3)))) for k in range(NUM_ROTATIONS)])
    labels = torch.arange(NUM_ROTATIONS, device=pooled.device).repeat_interleave(images.shape[0])
    return pooled, labels


def rotation_loss(head, feature_fn, images):
    """Mean cross-entropy of the head over the four rotations of each image -> Tensor[B]."""
    pooled, labels = rotation_features(feature_fn, images)
    return F.cross_entropy(head(pooled), labels, reduction='none').view(NUM_ROTATIONS, -1).mean(0)


def save_rotation_head(path, head, meta):
    """A plain dict of tensors and JSON-like values: loads with ``torch.load(weights_only=True)``."""
    torch.save(dict(state_dict=head.state_dict(), meta=dict(meta, in_channels=head.mlp[0].in_features,
                                                            hidden=head.mlp[0].out_features)), path)


def load_rotation_head(path):
    """-> (RotationHead in eval mode, frozen; its meta dict: feature, training config, checkpoint, command, ...)."""
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(checkpoint, dict) or not {'state_dict', 'meta'} <= set(checkpoint):
        raise ValueError(f'{path} is not a rotation head checkpoint (expected the keys state_dict and meta written '
                         'by tools/train_rotation_head.py)')
    meta = checkpoint['meta']
    head = RotationHead(meta['in_channels'], meta['hidden'])
    head.load_state_dict(checkpoint['state_dict'])
    return head.eval().requires_grad_(False), meta


class RotationObjective:
    """Higher is better for the shared loop: the negative rotation loss of ``head`` -> Tensor[B]."""

    def __init__(self, head: RotationHead):
        self.head = head

    def __call__(self, images, feature_fn, generator=None):
        self.head.to(images.device)
        return -rotation_loss(self.head, feature_fn, images)


@DEFENSES.register_module()
class RotationPurifier(Defense):
    """Purify by minimising the rotation head's loss (Algorithm 1's loop on ``-rotation_loss``).

    Args:
        head: path of a checkpoint from ``tools/train_rotation_head.py``. The head was trained on one feature of
            the model (its ``meta['feature']``, e.g. ``'backbone.-1'``); the robust wrapper feeds the purifier that
            feature (``self.feature``).
        eps, steps, step_size, norm, random_start, noise, pixel_range: as :class:`Defense`.

    Example::

        >>> defense = RotationPurifier(head='checkpoints/rotation-head.pth')
        >>> purified = defense.purify(pixels, feature_fn_of(defense.feature), torch.Generator().manual_seed(0))
    """

    def __init__(self, head: str = None, eps: float = 6.0, steps: int = 20, step_size: float = 255.0,
                 norm: str = 'linf', random_start: bool = True, noise: bool = True, pixel_range=(0.0, 255.0)):
        if not isinstance(head, str):
            raise ValueError('RotationPurifier needs head=<path of a rotation head checkpoint>; train one with '
                             'python tools/train_rotation_head.py CONFIG CHECKPOINT --out HEAD.pth')
        module, self.meta = load_rotation_head(head)
        super().__init__(RotationObjective(module), eps=eps, steps=steps, step_size=step_size, norm=norm,
                         random_start=random_start, noise=noise, pixel_range=pixel_range)
        self.head_path, self.feature = head, self.meta['feature']

    def __repr__(self):
        return (f'{type(self).__name__}(head={self.head_path!r}, feature={self.feature!r}, eps={self.eps}, '
                f'steps={self.steps}, step_size={self.step_size}, norm={self.norm!r})')
