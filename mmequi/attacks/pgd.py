"""Projected gradient descent (Madry et al., 2018): the base loop with its defaults."""
from mmequi.registry import ATTACKS

from .base import Attack


@ATTACKS.register_module()
class PGD(Attack):
    """PGD (Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018).

    Distance: L∞ (sign steps) or L2 (L2-normalised steps); projection onto the ε-ball after every step.

    Arguments: as :class:`Attack` (``eps``, ``step_size``, ``steps``, ``norm``, ``random_start``, ``pixel_range``).
    Shape: images B×C×H×W float pixels in ``pixel_range``; ``objective(images) -> Tensor[B]``; returns B×C×H×W.
    docs/method.md's evaluation attack is ``PGD(eps=4, step_size=1, steps=50)`` on 0–255 images (4/255, 1/255).

    Example::

        >>> attack = PGD(eps=4, step_size=1, steps=50)
        >>> adv = attack.perturb(pixels, objective, torch.Generator().manual_seed(0))
    """
