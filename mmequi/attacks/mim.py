"""Momentum iterative method (Dong et al., CVPR 2018)."""
from mmequi.loop import per_image_norm
from mmequi.registry import ATTACKS

from .base import Attack


@ATTACKS.register_module()
class MIM(Attack):
    """PGD whose step follows a momentum of the L1-normalised gradients: g_t = μ·g_{t−1} + ∇/‖∇‖₁ (per image)."""

    def __init__(self, momentum=0.5, **kwargs):
        if not momentum >= 0:
            raise ValueError(f'MIM momentum must be >= 0, got {momentum!r}')
        super().__init__(**kwargs)
        self.momentum = float(momentum)

    def direction(self, grad, step, state, generator):
        normalised = grad / per_image_norm(grad, 1).clamp_min(1e-12)
        state['momentum'] = self.momentum * state['momentum'] + normalised if 'momentum' in state else normalised
        return state['momentum']
