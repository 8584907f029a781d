"""mmequi's registries: the new concepts, each in a registry of its own scope ('mmequi').

Equivariance transforms, attacks and defenses are looked up here, by :func:`build`. The test-time wrappers, the hook
and the metric are registered once each where mmseg/mmdet runners look for them: ``SegRobustModel`` in mmseg's
``MODELS``, ``DetRobustModel`` in mmdet's, ``RobustTestHook`` and ``EquivarianceMetric`` in mmengine's root ``HOOKS``
/ ``METRICS`` (found under ``default_scope='mmseg'`` and ``'mmdet'`` alike).
"""
from mmengine.registry import Registry

# Geometric / photometric transforms that know their inverse on feature maps.
EQUI_TRANSFORMS = Registry('equivariance transform', scope='mmequi', locations=['mmequi.equivariance'])
# Adversarial attacks (PGD, MIM, SegPGD, DAG, adaptive), built from ``mmequi::_base_/attacks`` configs.
ATTACKS = Registry('attack', scope='mmequi', locations=['mmequi.attacks'])
# Test-time defenses (the equivariance purifier and the baselines).
DEFENSES = Registry('defense', scope='mmequi', locations=['mmequi.defenses'])


def build(registry: Registry, cfg: dict, what: str = None):
    """``registry.build(cfg)`` in mmequi's own scope, whatever the caller's default scope (mmseg, mmdet): these
    registries have no mmseg/mmdet children to switch to. Unknown types and keys get one message naming them."""
    what = what or registry.name
    name = cfg['type']
    if isinstance(name, str) and registry.get(name) is None:
        raise ValueError(f'unknown {what} type {name!r}; registered: {sorted(registry.module_dict)}')
    try:
        return registry.build(dict(cfg, _scope_='mmequi'))
    except TypeError as err:  # an unexpected config key (mmengine prefixes the class and its file)
        cls = registry.get(name) if isinstance(name, str) else name
        raise TypeError(f'bad {what} config for {cls.__name__}: {str(err).split(": ", 1)[-1]}') from None
