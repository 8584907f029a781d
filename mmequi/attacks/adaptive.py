"""Adaptive attacks: the attacker knows the defense (method.md, "Attacks for evaluation"; Athalye et al. 2018).

They attack a :class:`mmequi.models.RobustModel`'s task objective (``objective.wrapper`` gives the wrapper, hence
its ``defense`` and ``feature_fn``) and are evaluated against the defended model, like any other attack.
"""
import torch

from mmequi.equivariance.loss import compute_equivariance_score
from mmequi.equivariance.transforms import reference_transforms
from mmequi.registry import ATTACKS

from .base import Attack


def defense_of(objective, attack):
    """(defense, the feature_fn the defense optimises) of the wrapper that built ``objective``."""
    wrapper = getattr(objective, 'wrapper', None)
    defense = getattr(wrapper, 'defense', None)
    if defense is None:
        raise ValueError(f'{type(attack).__name__} is an adaptive attack: it needs a RobustModel with a defense '
                         '(set defense=... in RobustTestHook / --defense)')
    return defense, wrapper.defense_feature_fn


@ATTACKS.register_module()
class EquivarianceAwarePGD(Attack):
    """PGD on ``L_task(x + δ) + λ · score_equi(x + δ)``: the perturbed image itself is kept equivariant, so the
    purifier finds nothing to repair. The score is computed on the *perturbed* image (the reference code computes it
    on the clean one, where its gradient w.r.t. δ is zero and the attack degenerates to plain PGD), over fresh random
    draws of the defense's own transforms at every step (EOT over the views)."""
    needs_defense = True

    def __init__(self, lam=1.0, **kwargs):
        super().__init__(**kwargs)
        self.lam = float(lam)

    def perturb(self, images, objective, generator=None, valid_mask=None):
        defense, self._feature_fn = defense_of(objective, self)
        self._transforms = getattr(defense, 'transforms', None) or reference_transforms()
        self._generator = generator
        return super().perturb(images, objective, generator, valid_mask)

    def loss(self, objective, adv, step):
        task = super().loss(objective, adv, step)
        return task + self.lam * self.equivariance(adv).sum()

    def equivariance(self, adv):
        return compute_equivariance_score(self._feature_fn, adv, self._transforms, self._generator)


class ThroughDefenseAttack(Attack):
    """PGD on the task loss of the *purified* image, averaged over ``eot`` purifier runs (the purifier is random:
    random start, annealed noise, random views). Subclasses say how the purifier is differentiated."""
    needs_defense = True

    def __init__(self, eot=1, **kwargs):
        if isinstance(eot, bool) or not isinstance(eot, int) or eot < 1:
            raise ValueError(f'{type(self).__name__} eot (purifier draws per step) must be an integer >= 1, '
                             f'got {eot!r}')
        super().__init__(**kwargs)
        self.eot = eot

    def perturb(self, images, objective, generator=None, valid_mask=None):
        self._defense, self._feature_fn = defense_of(objective, self)
        self._generator = generator
        return super().perturb(images, objective, generator, valid_mask)

    def loss(self, objective, adv, step):
        return sum(super(ThroughDefenseAttack, self).loss(objective, self.through_defense(adv), step)
                   for _ in range(self.eot)) / self.eot

    def through_defense(self, adv):
        raise NotImplementedError


@ATTACKS.register_module()
class BPDA(ThroughDefenseAttack):
    """BPDA + EOT: the forward pass goes through the purifier, the backward pass treats it as the identity:
    x̂ = x + stop_grad(purify(x) − x)."""

    def __init__(self, eot=4, **kwargs):
        super().__init__(eot=eot, **kwargs)

    def through_defense(self, adv):
        purified = self._defense.purify(adv.detach(), self._feature_fn, self._generator)
        return adv + (purified - adv).detach()


@ATTACKS.register_module()
class FullGradientPGD(ThroughDefenseAttack):
    """The exact gradient through the unrolled purifier (all T steps, ``defense.purify_unrolled``). Feasible on
    small models only."""

    def perturb(self, images, objective, generator=None, valid_mask=None):
        defense, _ = defense_of(objective, self)
        if not callable(getattr(defense, 'purify_unrolled', None)):
            raise ValueError(f'{type(defense).__name__} cannot be unrolled: use BPDA for it')
        return super().perturb(images, objective, generator, valid_mask)

    def through_defense(self, adv):
        return self._defense.purify_unrolled(adv, self._feature_fn, self._generator)
