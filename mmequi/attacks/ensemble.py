"""SEA (Croce, Singh, Hein, "Towards Reliable Evaluation and Fast Training of Robust Semantic Segmentation Models",
ECCV 2024): APGD with several segmentation losses, the worst result kept per image."""
from typing import Optional, Sequence

import torch

from mmequi.evaluation.areas import add_areas, class_areas, pixel_accuracy, worst_choice
from mmequi.registry import ATTACKS

from .apgd import APGD, BPDAAPGD
from .base import Attack
from .seg_losses import check_seg_loss

SELECT = ('miou', 'acc')


@ATTACKS.register_module()
class SegEnsemble(Attack):
    """The segmentation ensemble attack (SEA): one APGD run per loss (masked CE, class-balanced CE, JS divergence,
    CosPGD's weighted CE by default; see :mod:`mmequi.attacks.seg_losses`), each with a progressive radius
    (2ε → 1.5ε → ε over 30 / 30 / 40 % of its steps), then per image the candidate that hurts most:
    ``select='miou'``: the one that lowers the running mIoU of the images attacked so far (by this attack, in
    this process) most, as SEA does; ``select='acc'``: the lowest pixel accuracy of the image.

    ``through_defense=True`` makes it adaptive: every loss is taken through the defense with BPDA + EOT
    (:class:`BPDAAPGD`, ``eot`` purifier draws per step) and the candidates are judged on the defended prediction
    (one purifier draw each, from the attack's own random stream).

    Distance: L∞ or L2, the result in the ε-ball. Cost: ``len(losses) × steps`` gradient evaluations (each through
    the purifier ``eot`` times when adaptive).

    Args: ``losses``, ``steps`` (per loss), ``radii`` / ``radius_fractions`` (as :class:`APGD`), ``select``,
    ``through_defense``, ``eot``; ``eps``, ``norm``, ``random_start``, ``pixel_range`` as :class:`Attack`.
    Shape: images B×C×H×W float pixels; the objective must provide ``logits_and_labels`` (a segmentor's).

    Example::

        >>> attack = SegEnsemble(eps=4, steps=100)  # 4 losses × 100 APGD steps, L∞ 4/255
        >>> adv = attack.perturb(pixels, objective, torch.Generator().manual_seed(0))
    """

    def __init__(self, losses: Sequence[str] = ('masked_ce', 'balanced_ce', 'js', 'cospgd'), steps: int = 100,
                 radii: Sequence[float] = (2.0, 1.5, 1.0), radius_fractions: Sequence[float] = (0.3, 0.3, 0.4),
                 select: str = 'miou', through_defense: bool = False, eot: int = 1, **kwargs):
        kwargs.pop('step_size', None)  # APGD sets its own
        super().__init__(steps=steps, **kwargs)
        if isinstance(losses, str) or not losses:
            raise ValueError(f'SegEnsemble losses must be a non-empty list of loss names, got {losses!r}')
        losses = tuple(check_seg_loss(name, 'ensemble loss') for name in losses)
        if select not in SELECT:
            raise ValueError(f'unknown SegEnsemble select {select!r}; expected one of {SELECT}')
        self.losses, self.select, self.through_defense = losses, select, bool(through_defense)
        self.needs_defense = self.through_defense
        base = dict(eps=self.eps, steps=self.steps, norm=self.norm, random_start=self.random_start,
                    pixel_range=self.pixel_range, radii=radii, radius_fractions=radius_fractions)
        if self.through_defense:
            self.attacks = [BPDAAPGD(eot=eot, seg_loss=name, **base) for name in losses]
        else:
            self.attacks = [APGD(seg_loss=name, **base) for name in losses]
        self._areas = {}  # running per-class areas of the images attacked so far (SEA's choice is on their mIoU)

    def check_call(self, objective, context):
        super().check_call(objective, context)
        if not callable(getattr(objective, 'logits_and_labels', None)):
            raise ValueError('SegEnsemble attacks segmentors: it needs an objective with logits_and_labels(), got '
                             f'{type(objective).__name__}')

    def perturb(self, images, objective, generator=None, valid_mask=None, context=None):
        self.check_call(objective, context)
        candidates = [attack.perturb(images, objective, generator, valid_mask, context) for attack in self.attacks]
        return torch.stack([candidates[self.worst([c[i:i + 1] for c in candidates], objective, context, generator)][i]
                            for i in range(images.shape[0])])

    def counts(self, adv, objective, context, generator):
        """Per-class areas of the prediction on ``adv`` (1×C×H×W), defended if adaptive."""
        with torch.no_grad():
            if self.through_defense:
                adv = context.defense.purify(adv, context.feature_fn, generator)
            logits, labels, valid = objective.logits_and_labels(adv)
            return class_areas(logits.argmax(1)[valid], labels[valid], logits.shape[1])

    def worst(self, candidates, objective, context, generator):
        """Index of the candidate that hurts most (see ``select``); adds its areas to the running total."""
        counts = [self.counts(c, objective, context, generator) for c in candidates]
        if self.select == 'acc':
            best = int(torch.tensor([pixel_accuracy(areas) for areas in counts]).argmin())
        else:
            best = worst_choice(self._areas, counts)
        self._areas = add_areas(self._areas, counts[best])
        return best


__all__ = ['SegEnsemble']
