"""Adversarial training in mmengine's own loop (docs/method.md, "Adversarial training"): the training batch's images
replaced by adversarial examples, made in pixel space in front of the model's data preprocessor, before the model's
own loss and optimizer step.

The attack is one of mmequi's test-time attacks (same pixel units, ε on 0–255, same padding rule: the preprocessor
pads after the attack, so padding is never perturbed); it maximises the model's own training loss.
"""
import copy
from typing import Optional, Union

import torch
import torch.nn as nn

from mmequi.attacks import Attack
from mmequi.loop import ProjectedGradient
from mmequi.models.robust_model import build_component, keyed_seed, loss_mode
from mmequi.registry import ATTACKS


class TrainingLoss:
    """``pixels (B×C×H×W, 0–255) -> Tensor[B]``: the model's own training loss (mmengine's sum of its ``loss*``
    entries) of the images and their annotations, through the model's data preprocessor as in training, given to
    each image. It computes in :func:`~mmequi.models.robust_model.loss_mode` (running statistics, no dropout: the
    attack reads the model, it does not move its batch statistics, and the images do not interact), so each image's
    gradient of the batch's loss points where its own loss grows; with the same random draws at every step (RoI
    sampling, batch augments)."""

    def __init__(self, model: nn.Module, preprocessor: nn.Module, samples: list, seed: int, sizes: list = None):
        self.model, self.preprocessor, self.samples, self.seed = model, preprocessor, samples, seed
        self.sizes = sizes  # each image's (h, w) in a batch padded to one size; None: the batch's size

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        images = list(pixels) if self.sizes is None else [p[:, :h, :w] for p, (h, w) in zip(pixels, self.sizes)]
        with torch.random.fork_rng(devices=[]), loss_mode(self.model):
            torch.manual_seed(self.seed)
            data = self.preprocessor(dict(inputs=images, data_samples=copy.deepcopy(self.samples)), True)
            losses = self.model.loss(data['inputs'], data['data_samples'])
        return self.model.parse_losses(losses)[0].expand(len(pixels))


def padded(images: list, device) -> tuple:
    """C×H×W images of any sizes -> (B×C×H×W float pixels padded with zeros at the bottom and right, the B×1×H×W
    mask of each image's own pixels, [(h, w)])."""
    sizes = [tuple(image.shape[-2:]) for image in images]
    height, width = max(h for h, _ in sizes), max(w for _, w in sizes)
    pixels = torch.zeros(len(images), images[0].shape[0], height, width, device=device)
    valid = torch.zeros(len(images), 1, height, width, device=device)
    for k, (image, (h, w)) in enumerate(zip(images, sizes)):
        pixels[k, :, :h, :w] = image.to(device).float()
        valid[k, :, :h, :w] = 1
    return pixels, valid, sizes


def sums_the_objective(attack: Attack) -> bool:
    """Whether ``attack`` uses nothing of its objective but the gradient of its sum (PGD, MIM): then the images of a
    batch can be attacked together through the batch's loss. An attack that reads per-image values (APGD's step-size
    checkpoints, an ensemble's worst case, a segmentation loss) is run image by image."""
    kind = type(attack)
    return (kind.loss is Attack.loss and kind.perturb is Attack.perturb and kind.run is ProjectedGradient.run
            and attack.seg_loss is None)


class AdversarialPreprocessor(nn.Module):
    """A model's data preprocessor with adversarial examples made in front of it in training.

    In a training call (``training=True``) each image of the batch is, with probability ``ratio``, replaced by the
    attack's adversarial version of it (float pixels in the attack's pixel range, within ``attack.eps`` of the image
    clipped to that range: a photometric augmentation may leave it, mmdet's does not clip), then the original
    preprocessor runs on the batch as it would have. Validation and test calls pass
    through. Which images are attacked depends on ``seed``, the training iteration (``step``, set by
    :class:`~mmequi.hooks.AdversarialTrainingHook`) and the image's path only; the attack's random start on the
    same and on the first image of what is attacked together. The attack's gradients are taken with
    ``autograd.grad`` on the images alone: no parameter gets a ``.grad`` from them.

    Args:
        preprocessor: the model's data preprocessor.
        model: the model (its ``loss`` and ``parse_losses``); not registered as a submodule (it holds this one).
        attack: an ``ATTACKS`` config (``dict(type='PGD', eps=4, step_size=1, steps=3)``) or instance.
        ratio: the share of training images replaced, in [0, 1].
        seed: the seed of the choice of images and of the attack's random start.
    """

    def __init__(self, preprocessor: nn.Module, model: nn.Module, attack: Union[dict, Attack], ratio: float = 1.0,
                 seed: int = 0):
        super().__init__()
        self.preprocessor = preprocessor
        self.attack = self.checked_attack(attack, ratio)
        self.model_ref = [model]  # a list: an nn.Module attribute would make the model a child of its own child
        self.ratio, self.seed, self.step = float(ratio), int(seed), 0
        self.share = 0.0  # of the last training batch's images made adversarial

    @staticmethod
    def checked_attack(attack: Union[dict, Attack], ratio: float) -> Attack:
        """The built attack, after checking the settings (before any work)."""
        if not 0.0 <= float(ratio) <= 1.0:
            raise ValueError(f'ratio is the share of training images made adversarial, in [0, 1]; got {ratio!r}')
        built = build_component(ATTACKS, attack, Attack, 'attack')
        if built is None or getattr(built, 'needs_defense', False):
            raise ValueError('adversarial training needs an attack on the model itself (e.g. PGD or APGD), got '
                             f'{attack!r}')
        return built

    def __getattr__(self, name):  # the wrapped preprocessor's attributes (mean, std, cast_data, ...)
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules['preprocessor'], name)

    def forward(self, data: dict, training: bool = False) -> dict:
        if training and self.ratio > 0:
            data = dict(data, inputs=self.adversarial(data['inputs'], data['data_samples']))
        return self.preprocessor(data, training)

    def image_seed(self, sample, index: int) -> int:
        key = sample.metainfo.get('img_path', sample.metainfo.get('img_id', index))
        return keyed_seed(self.seed * 1_000_003 + self.step * 7_919, key)

    def adversarial(self, inputs, samples):
        """The batch's images (a list of C×H×W, or a B×C×H×W tensor) with the chosen ones made adversarial: together
        (padded to one size, the padding outside what the attack may change) when the attack only sums its
        objective (:func:`sums_the_objective`), else one by one."""
        model = self.model_ref[0]
        device = next(model.parameters()).device
        seeds = [self.image_seed(sample, i) for i, sample in enumerate(samples)]
        chosen = [i for i, seed in enumerate(seeds)
                  if torch.rand((), generator=torch.Generator().manual_seed(seed)).item() < self.ratio]
        self.share = len(chosen) / max(len(samples), 1)
        out = list(inputs)
        groups = ([chosen] if chosen else []) if sums_the_objective(self.attack) else [[i] for i in chosen]
        for group in groups:
            pixels, valid, sizes = padded([inputs[i] for i in group], device)
            seed = seeds[group[0]]
            objective = TrainingLoss(model, self.preprocessor, [samples[i] for i in group], seed, sizes)
            adv = self.attack.perturb(pixels, objective, torch.Generator().manual_seed(seed + 1), valid)
            for i, image, (h, w) in zip(group, adv, sizes):
                out[i] = image[:, :h, :w].to(inputs[i].device)
        return torch.stack(out) if isinstance(inputs, torch.Tensor) else out


def adversarial_preprocessor(model: nn.Module) -> Optional[AdversarialPreprocessor]:
    """The model's :class:`AdversarialPreprocessor`, or None when it has none."""
    found = getattr(model, 'data_preprocessor', None)
    return found if isinstance(found, AdversarialPreprocessor) else None
