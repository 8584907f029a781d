"""SegPGD (Gu, Zhao, Tresp, Torr; ECCV 2022): PGD for segmentation that shifts weight from correctly to wrongly
classified pixels over the iterations."""
from mmequi.registry import ATTACKS

from .base import Attack
from .seg_losses import segpgd_weighted


@ATTACKS.register_module()
class SegPGD(Attack):
    """Maximises L_t = (1−λ_t)·Σ_correct CE / N + λ_t·Σ_wrong CE / N per image, λ_t = t / (2T), N = the number of
    valid (not ignored) pixels, as in the paper. Early steps push the still-correct pixels over the boundary;
    later ones keep the wrong pixels wrong.

    Needs ``objective.pixel_losses(images) -> (ce B×h×w, correct B×h×w bool, valid B×h×w bool)``.
    """

    def check_call(self, objective, context):
        super().check_call(objective, context)
        if not callable(getattr(objective, 'pixel_losses', None)):
            raise ValueError('SegPGD needs a segmentation objective with pixel_losses() returning (ce_map, correct, '
                             f'valid) B×h×w maps; got {type(objective).__name__}')

    def loss(self, call, adv, step):
        ce, correct, valid = call.objective.pixel_losses(adv)
        if not (ce.dim() == 3 and ce.shape[0] == adv.shape[0] and correct.shape == ce.shape
                and valid.shape == ce.shape):
            raise ValueError(f'pixel_losses must return three B×h×w maps (B = {adv.shape[0]}), got '
                             f'{tuple(ce.shape)}, {tuple(correct.shape)}, {tuple(valid.shape)}')
        return segpgd_weighted(ce, correct, valid, step / self.steps)
