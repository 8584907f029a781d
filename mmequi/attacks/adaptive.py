"""Adaptive attacks: the attacker knows the defense (docs/method.md, "Attacks for evaluation"; Athalye et al. 2018).

The robust wrapper hands them an :class:`AttackContext` (the defense and the feature function it optimises); they
are evaluated against the defended model, like any other attack.
"""
from mmequi.equivariance import EquivarianceObjective, compute_equivariance_score
from mmequi.registry import ATTACKS

from .base import Attack


@ATTACKS.register_module()
class EquivarianceAwarePGD(Attack):
    """PGD on ``L_task(x + δ) + λ · J(x + δ)``, where J is the defense's own objective (the equivariance score for
    the equivariance purifier, the pooled score for the invariance baseline, the negative rotation loss for the
    rotation baseline; the reference equivariance score for a defense without one): the perturbed image itself
    already satisfies the defense, so the purifier finds nothing to repair. J is computed on the *perturbed* image
    (the reference code computes it on the clean one, where its gradient w.r.t. δ is zero and the attack degenerates
    to plain PGD), over fresh random draws of the defense's own views at every step (EOT over the views).

    Args: ``lam`` (λ ≥ 0), the rest as :class:`Attack`.
    """
    needs_defense = True

    def __init__(self, lam: float = 1.0, gate_margin: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.lam, self.gate_margin = float(lam), float(gate_margin)

    def prepare(self, objective, context=None, generator=None):
        call = super().prepare(objective, context, generator)
        call.memory['defense_objective'] = context.defense.objective or EquivarianceObjective()
        return call

    def loss(self, call, adv, step):
        return super().loss(call, adv, step) + self.lam * self.defense_term(call, adv)

    def defense_term(self, call, adv):
        """J(adv) -> Tensor[B]: what the defense maximises, with views drawn from the call's generator. Against a
        defense with a ``gate`` (it purifies only inputs whose mean equivariance score is below it), the hinge
        min(score − gate − ``gate_margin``, 0): the score is pushed past the gate (with a margin, since the gate
        draws views of its own), then every step goes to the task loss."""
        defense = call.context.defense
        if getattr(defense, 'gate', None) is None:
            return call.memory['defense_objective'](adv, call.context.feature_fn, call.generator)
        score = compute_equivariance_score(call.context.feature_fn, adv, defense.objective.transforms, call.generator,
                                           reduction='mean')
        return (score - defense.gate - self.gate_margin).clamp(max=0)


class ThroughDefenseAttack(Attack):
    """PGD on the task loss of the *purified* image, averaged over ``eot`` purifier runs (the purifier is random:
    random start, annealed noise, random views). Subclasses say how the purifier is differentiated."""
    needs_defense = True

    def __init__(self, eot: int = 1, **kwargs):
        if isinstance(eot, bool) or not isinstance(eot, int) or eot < 1:
            raise ValueError(f'{type(self).__name__} eot (purifier draws per step) must be an integer >= 1, '
                             f'got {eot!r}')
        super().__init__(**kwargs)
        self.eot = eot

    def loss(self, call, adv, step):
        return sum(super(ThroughDefenseAttack, self).loss(call, self.through_defense(call, adv), step)
                   for _ in range(self.eot)) / self.eot

    def through_defense(self, call, adv):
        """One purifier draw (from the call's generator) of ``adv``, differentiable w.r.t. ``adv``."""
        raise NotImplementedError


@ATTACKS.register_module()
class BPDA(ThroughDefenseAttack):
    """BPDA + EOT (Athalye et al., ICML 2018): the forward pass goes through the purifier, the backward pass treats
    it as the identity: x̂ = x + stop_grad(purify(x) − x); the gradient is averaged over ``eot`` purifier draws."""

    def __init__(self, eot: int = 4, **kwargs):
        super().__init__(eot=eot, **kwargs)

    def through_defense(self, call, adv):
        purified = call.context.defense.purify(adv.detach(), call.context.feature_fn, call.generator)
        return adv + (purified - adv).detach()


@ATTACKS.register_module()
class FullGradientPGD(ThroughDefenseAttack):
    """The exact gradient through the unrolled purifier (all T steps, ``defense.purify_unrolled``). Feasible on
    small models only."""

    def through_defense(self, call, adv):
        return call.context.defense.purify_unrolled(adv, call.context.feature_fn, call.generator)
