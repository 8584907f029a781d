"""The attack role: maximise a task objective within an ε-ball, over the shared loop (:mod:`mmequi.loop`)."""
from typing import Callable, NamedTuple, Optional

import torch

from mmequi.loop import NORMS, ProjectedGradient, per_image_losses

from .seg_losses import check_seg_loss, seg_loss

# ``objective(images) -> Tensor[B]``: the per-image task loss of un-normalised pixel images (built by the wrapper).
Objective = Callable[[torch.Tensor], torch.Tensor]


class AttackContext(NamedTuple):
    """What an adaptive attack may know about the defended model, handed over by the robust wrapper.

    ``defense``: the :class:`mmequi.defenses.Defense` in front of the model (None when undefended);
    ``feature_fn``: ``pixels -> feature map(s)``, the features that defense optimises.
    """
    defense: Optional[object] = None
    feature_fn: Optional[Callable] = None


class Call(NamedTuple):
    """What one :meth:`Attack.perturb` call works with, handed to every loss evaluation of that call: an attack keeps
    no per-call state on itself, so one instance can serve several calls at once.

    ``memory``: what a subclass keeps across the steps of this call (e.g. DAG's targets, drawn at the first step).
    """
    objective: Objective
    context: Optional[AttackContext] = None
    generator: Optional[torch.Generator] = None
    memory: Optional[dict] = None


class Attack(ProjectedGradient):
    """Base class: ``steps`` steps of projected gradient ascent on a task objective from an optional random start.

    ``perturb(images, objective)`` maximises ``objective(images) -> Tensor[B]`` within the ε-ball of ``norm`` ('linf'
    box or 'l2' ball, per image), keeps pixels in ``pixel_range`` and leaves pixels outside ``valid_mask``
    untouched. Subclasses override :meth:`loss` (what is maximised at a step) and :meth:`direction` (how the
    gradient becomes a step direction); what one call works with travels in its :class:`Call`. Plain PGD uses both
    defaults. Adaptive attacks set ``needs_defense`` and read the defense from the ``context`` the robust wrapper
    passes.

    Args:
        eps: radius of the ball in pixel units (4 on 0–255 images is 4/255).
        step_size: step in pixel units (L∞: per pixel; L2: per image).
        steps: number of steps.
        norm: 'linf' or 'l2'.
        random_start: start from a uniform draw in the ball.
        pixel_range: (low, high) of valid pixel values.
        seg_loss: maximise this segmentation loss of :mod:`mmequi.attacks.seg_losses` ('ce', 'masked_ce',
            'balanced_ce', 'js', 'cospgd', 'segpgd') instead of the task objective; None: the task objective.
    """
    needs_defense = False  # adaptive attacks attack the defended model: without a defense they are undefined

    def __init__(self, eps: float = 4.0, step_size: float = 1.0, steps: int = 50, norm: str = 'linf',
                 random_start: bool = True, pixel_range=(0.0, 255.0), seg_loss: Optional[str] = None):
        super().__init__(eps, step_size, steps, norm, random_start, pixel_range)
        self.seg_loss = None if seg_loss is None else check_seg_loss(seg_loss, 'loss (seg_loss)')

    def perturb(self, images: torch.Tensor, objective: Objective, generator: Optional[torch.Generator] = None,
                valid_mask: Optional[torch.Tensor] = None, context: Optional[AttackContext] = None) -> torch.Tensor:
        """Adversarial (detached) B×C×H×W images maximising ``objective``."""
        call = self.prepare(objective, context, generator)
        return self.run(images, lambda adv, step: self.loss(call, adv, step), generator, valid_mask)

    def prepare(self, objective: Objective, context: Optional[AttackContext] = None,
                generator: Optional[torch.Generator] = None) -> Call:
        """Check what the call needs (:meth:`check_call`, before any work) -> the :class:`Call` its steps share."""
        self.check_call(objective, context)
        return Call(objective, context, generator, {})

    def check_call(self, objective: Objective, context: Optional[AttackContext]):
        """What every call needs, checked before any work: a defense for an adaptive attack, logits for a
        segmentation loss (subclasses add their own needs)."""
        if self.needs_defense and (context is None or context.defense is None):
            raise ValueError(f'{type(self).__name__} is an adaptive attack: it needs a RobustModel with a defense '
                             '(set defense=... in RobustTestHook / --defense)')
        if self.seg_loss is not None and not callable(getattr(objective, 'logits_and_labels', None)):
            raise ValueError(f'seg_loss={self.seg_loss!r} needs a segmentation objective with logits_and_labels(); '
                             f'got {type(objective).__name__}')

    def loss(self, call: Call, adv: torch.Tensor, step: int) -> torch.Tensor:
        """Per-image value maximised at ``step`` -> Tensor[B]: the task objective itself (or its ``seg_loss``)."""
        if self.seg_loss is not None:
            return per_image_losses(seg_loss(self.seg_loss, call.objective, adv, step / max(self.steps, 1)), adv)
        return per_image_losses(call.objective(adv), adv)


__all__ = ['NORMS', 'Attack', 'AttackContext', 'Call', 'Objective']
