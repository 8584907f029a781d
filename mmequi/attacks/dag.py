"""Dense Adversary Generation (Xie et al., ICCV 2017) for two-stage detectors: flip the classification of the
proposals that cover objects."""
from mmequi.registry import ATTACKS

from .base import Attack


@ATTACKS.register_module()
class DAG(Attack):
    """Maximises, over the proposals that overlap a ground-truth object and are still classified correctly, the
    margin logit[random wrong label] − logit[true label], within the same ε-ball as PGD.

    Needs ``objective.dag_loss(images, generator) -> Tensor[B]`` (mmequi's detection objective provides it).
    """

    def perturb(self, images, objective, generator=None, valid_mask=None):
        if not callable(getattr(objective, 'dag_loss', None)):
            raise ValueError('DAG needs a detection objective with dag_loss(images, generator); got '
                             f'{type(objective).__name__}')
        self._generator = generator  # draws the adversarial labels (once, at the first step)
        return super().perturb(images, objective, generator, valid_mask)

    def loss(self, objective, adv, step):
        return objective.dag_loss(adv, self._generator).sum()
