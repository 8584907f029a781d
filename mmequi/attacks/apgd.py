"""APGD (Croce & Hein, ICML 2020): PGD without a step size to tune, and the BPDA attack with its step rule."""
import math
from typing import Optional, Sequence

import torch

from mmequi.loop import _TINY, check_generator, check_images, per_image_losses, per_image_norm, valid_region
from mmequi.registry import ATTACKS

from .adaptive import BPDA
from .base import Attack


def checkpoints(steps: int) -> list:
    """The iterations after which APGD may halve its step: the first after 22 % of the budget, then ever shorter
    intervals (3 % less each time, at least 6 %), as in the reference implementation."""
    first, least, shrink = max(int(0.22 * steps), 1), max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)
    marks, mark, interval = [], 0, first
    while mark + interval <= steps:
        mark += interval
        marks.append(mark)
        interval = max(interval - shrink, least)
    return marks


def stage_steps(steps: int, fractions: Sequence[float]) -> list:
    """Split ``steps`` over the radius stages (largest remainder, so they add up)."""
    raw = [steps * f / sum(fractions) for f in fractions]
    counts = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: counts[i] - raw[i])[:steps - sum(counts)]:
        counts[i] += 1
    return counts


@ATTACKS.register_module()
class APGD(Attack):
    """APGD (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020).

    Distance: L∞ (sign steps) or L2 (L2-normalised steps), projection onto the ε-ball. The step starts at 2ε and
    is halved per image at a checkpoint (:func:`checkpoints`) when fewer than ``rho`` of the steps since the last
    one raised the loss, or when neither the step nor the best loss changed since the last one; a halving restarts
    from the best point. Each move is ``alpha`` of the projected step plus 1 − ``alpha`` of the previous move
    (momentum); the result is the best iterate per image, not the last.

    ``radii`` / ``radius_fractions``: a progressive radius as in SEA (Croce et al., ECCV 2024): e.g. radii
    (2, 1.5, 1) runs the first 30 % of the steps in the 2ε-ball, the next 30 % in the 1.5ε-ball and the rest in the
    ε-ball, each stage a fresh APGD schedule started from the previous stage's best point projected onto its ball;
    the last radius must be 1, so the result is always in the ε-ball.

    Arguments: as :class:`Attack`; ``step_size`` is ignored (the schedule sets it), ``steps`` counts gradient
    evaluations (the same cost as PGD's ``steps``; one more forward scores the last iterate).
    Shape: images B×C×H×W float pixels in ``pixel_range``; ``objective(images) -> Tensor[B]``; returns B×C×H×W.

    Example::

        >>> attack = APGD(eps=4, steps=50)  # L∞ 4/255 on 0–255 images
        >>> adv = attack.perturb(pixels, objective, torch.Generator().manual_seed(0))
    """

    def __init__(self, rho: float = 0.75, alpha: float = 0.75, radii: Sequence[float] = (1.0,),
                 radius_fractions: Optional[Sequence[float]] = None, step_size: Optional[float] = None, **kwargs):
        eps = kwargs.get('eps', 4.0)
        super().__init__(step_size=step_size or max(2 * eps, _TINY), **kwargs)
        if not 0 < rho <= 1 or not 0 < alpha <= 1:
            raise ValueError(f'APGD needs 0 < rho <= 1 and 0 < alpha <= 1, got rho={rho!r}, alpha={alpha!r}')
        radii = tuple(float(r) for r in radii)
        fractions = tuple(float(f) for f in (radius_fractions or [1.0] * len(radii)))
        if not radii or radii[-1] != 1.0 or min(radii) <= 0 or len(fractions) != len(radii) or min(fractions) <= 0:
            raise ValueError(f'APGD radii must be positive multiples of eps ending with 1 and radius_fractions '
                             f'positive, one per radius; got radii={radii!r}, radius_fractions={fractions!r}')
        self.rho, self.alpha, self.radii, self.radius_fractions = float(rho), float(alpha), radii, fractions

    def run(self, images, loss, generator=None, valid_mask=None, keep_graph=False):
        if keep_graph:
            raise ValueError('APGD keeps no graph through its steps (keep_graph=True is for the plain loop)')
        images = check_images(images).detach()
        check_generator(generator)
        valid = valid_region(valid_mask, images)
        if self.eps == 0 or loss is None or self.steps == 0:
            return images.clone()
        delta = self.random_delta(images, generator) if self.random_start else torch.zeros_like(images)
        done = 0
        with torch.enable_grad():
            for radius, steps in zip(self.radii, stage_steps(self.steps, self.radius_fractions)):
                eps = self.eps * radius  # the stage's ball
                delta = self.stage(images, self.constrain(images, delta, valid, eps), loss, steps, valid, done, eps)
                done += steps
        return self.apply_delta(images, delta, valid)

    def value_and_grad(self, images, delta, loss, step):
        delta = delta.detach().requires_grad_(True)
        adv = images + delta
        value = per_image_losses(loss(adv, step), adv)
        return value.detach(), self.gradient(value.sum(), delta)

    def stage(self, images, delta, loss, steps, valid, done=0, eps=None):
        """One APGD run of ``steps`` gradient evaluations from ``delta`` in the ``eps``-ball (None: ε) -> best δ per
        image (``done``: steps of earlier stages, so a scheduled loss sees the attack's global step)."""
        if steps == 0:
            return delta
        eps = self.eps if eps is None else eps
        shape = (-1,) + (1,) * (images.dim() - 1)
        eta = images.new_full((images.shape[0],), 2 * eps)
        value, grad = self.value_and_grad(images, delta, loss, done)
        best, best_value, best_grad = delta.clone(), value.clone(), grad.clone()
        previous_delta, previous_value = delta.clone(), value.clone()
        marks, last_mark = set(checkpoints(steps)), 0
        raised = torch.zeros_like(value)  # steps since the last checkpoint that raised the loss
        # All True, as the reference implementation (auto-attack's reduced_last_check): "no improvement since the last
        # checkpoint" cannot fire at the first checkpoint.
        halved_last = torch.ones_like(value, dtype=torch.bool)
        best_at_mark = best_value.clone()
        for k in range(1, steps + 1):
            grad = grad * valid
            direction = grad.sign() if self.norm == 'linf' else grad / per_image_norm(grad, 2).clamp_min(_TINY)
            z = self.constrain(images, delta + eta.view(shape) * direction, valid, eps)
            alpha = self.alpha if k > 1 else 1.0  # no momentum on the first step
            new = self.constrain(images, delta + alpha * (z - delta) + (1 - alpha) * (delta - previous_delta), valid,
                                 eps)
            previous_delta, delta = delta, new
            if k < steps:
                value, grad = self.value_and_grad(images, delta, loss, done + k)
            else:  # the last iterate only needs scoring
                with torch.no_grad():
                    value = per_image_losses(loss(images + delta, done + k), images)
            raised += (value > previous_value).to(raised.dtype)
            previous_value = value
            better = value > best_value
            best = torch.where(better.view(shape), delta, best)
            best_grad = torch.where(better.view(shape), grad, best_grad)
            best_value = torch.where(better, value, best_value)
            if k in marks:
                few_raises = raised <= self.rho * (k - last_mark)
                stuck = ~halved_last & (best_value <= best_at_mark)
                halve = few_raises | stuck
                eta = torch.where(halve, eta / 2, eta)
                delta = torch.where(halve.view(shape), best, delta)
                grad = torch.where(halve.view(shape), best_grad, grad)
                raised.zero_()
                halved_last, best_at_mark, last_mark = halve, best_value.clone(), k
        return best


@ATTACKS.register_module()
class BPDAAPGD(BPDA, APGD):
    """BPDA + EOT (forward through the purifier, identity backward, ``eot`` purifier draws per step) with the APGD
    step rule instead of PGD's fixed step (Croce et al., "Evaluating the adversarial robustness of adaptive
    test-time defenses", ICML 2022, recommend both). The best iterate is chosen on the EOT-averaged loss."""

    def __init__(self, eot: int = 1, **kwargs):
        super().__init__(eot=eot, **kwargs)


__all__ = ['APGD', 'BPDAAPGD', 'checkpoints', 'stage_steps']
