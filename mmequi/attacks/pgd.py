"""Projected gradient descent (Madry et al., 2018): the base loop with its defaults."""
from mmequi.registry import ATTACKS

from .base import Attack


@ATTACKS.register_module()
class PGD(Attack):
    """PGD: sign steps for L∞, L2-normalised steps for L2, projection onto the ε-ball after every step.
    method.md's evaluation attack is ``PGD(eps=4, step_size=1, steps=50)`` on 0–255 images (4/255, 1/255)."""
