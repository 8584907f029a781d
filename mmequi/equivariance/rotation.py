"""Baseline: rotation self-supervision as a test-time purifier (Gidaris et al. 2018's pretext task, used for
purification as in Shi et al. 2021).

A small head predicts which of the four rotations (0°, 90°, 180°, 270°) an image was given, from the frozen model's
pooled features; ``tools/train_rotation_head.py`` trains it on the model's training data. At test time the purifier
finds a bounded correction that minimises the head's loss over the four rotations: the same loop, bounds and
interface as :class:`EquivariancePurifier`, with the rotation loss in place of the equivariance score.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmequi.registry import DEFENSES

from .purifier import EquivariancePurifier

NUM_ROTATIONS = 4


def pool(features):
    """Feature map or list of levels -> B×C (each level's global average, concatenated)."""
    levels = [features] if isinstance(features, torch.Tensor) else list(features)
    return torch.cat([f.mean((2, 3)) for f in levels], 1)


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


@DEFENSES.register_module()
class RotationPurifier(EquivariancePurifier):
    """Purify by minimising the rotation head's loss (Algorithm 1's loop on ``-rotation_loss``).

    ``head``: path of a checkpoint from ``tools/train_rotation_head.py``. The head was trained on one feature of the
    model (its ``meta['feature']``, e.g. ``'backbone.-1'``); the robust wrapper feeds the purifier that feature
    (``self.feature``). Other arguments as :class:`EquivariancePurifier` (no views: ``transforms``/``num_views`` only
    say which views the wrapper's equivariance *score* uses for reports).
    """

    def __init__(self, head=None, eps=6.0, steps=20, step_size=255.0, norm='linf', random_start=True, noise=True,
                 pixel_range=(0.0, 255.0), transforms=None, num_views=8):
        super().__init__(transforms=transforms, num_views=num_views, eps=eps, steps=steps, step_size=step_size,
                         norm=norm, random_start=random_start, noise=noise, pixel_range=pixel_range)
        if not isinstance(head, str):
            raise ValueError('RotationPurifier needs head=<path of a rotation head checkpoint>; train one with '
                             'python tools/train_rotation_head.py CONFIG CHECKPOINT --out HEAD.pth')
        self.head_path = head
        self.head, self.meta = load_rotation_head(head)
        self.feature = self.meta['feature']

    def objective(self, feature_fn, images, generator):
        """Higher is better for the shared loop: the negative rotation loss."""
        self.head.to(images.device)
        return -rotation_loss(self.head, feature_fn, images)

    def __repr__(self):
        return (f'{type(self).__name__}(head={self.head_path!r}, feature={self.feature!r}, eps={self.eps}, '
                f'steps={self.steps}, step_size={self.step_size}, norm={self.norm!r})')
