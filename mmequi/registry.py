"""mmequi's registries.

Model wrappers, hooks and metrics are children of mmengine's root registries (as in mmseg, mmdet and
mmyolo), so they resolve under ``default_scope='mmseg'`` and ``'mmdet'`` alike. Equivariance transforms,
attacks and defenses are new concepts with registries of their own.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, locations=['mmequi.models'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['mmequi.hooks'])
METRICS = Registry('metric', parent=MMENGINE_METRICS, locations=['mmequi.evaluation'])

# Geometric / photometric transforms that know their inverse on feature maps.
EQUI_TRANSFORMS = Registry('equivariance transform', locations=['mmequi.equivariance'])
# Adversarial attacks (PGD, MIM, SegPGD, ...), built from ``configs/_base_/attacks``.
ATTACKS = Registry('attack', locations=['mmequi.attacks'])
# Test-time defenses (the equivariance purifier and the baselines).
DEFENSES = Registry('defense', locations=['mmequi.equivariance'])
