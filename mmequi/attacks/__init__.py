"""Adversarial attacks on pixel images (torchattacks style), built from ``ATTACKS`` configs."""
from .adaptive import BPDA, EquivarianceAwarePGD, FullGradientPGD
from .apgd import APGD, BPDAAPGD
from .base import NORMS, Attack, AttackContext, Call
from .dag import DAG
from .ensemble import SegEnsemble
from .mim import MIM
from .pgd import PGD
from .seg_losses import SEG_LOSSES
from .segpgd import SegPGD

__all__ = ['NORMS', 'Attack', 'AttackContext', 'Call', 'PGD', 'MIM', 'SegPGD', 'DAG', 'APGD', 'SegEnsemble', 'SEG_LOSSES',
           'EquivarianceAwarePGD', 'BPDA', 'BPDAAPGD', 'FullGradientPGD']
