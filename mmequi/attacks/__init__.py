"""Adversarial attacks on pixel images (torchattacks style), built from ``ATTACKS`` configs."""
from .adaptive import BPDA, EquivarianceAwarePGD, FullGradientPGD
from .base import NORMS, Attack, AttackContext
from .dag import DAG
from .mim import MIM
from .pgd import PGD
from .segpgd import SegPGD

__all__ = ['NORMS', 'Attack', 'AttackContext', 'PGD', 'MIM', 'SegPGD', 'DAG', 'EquivarianceAwarePGD', 'BPDA',
           'FullGradientPGD']
