"""mmequi: restore equivariance at inference time to make OpenMMLab models robust to adversarial inputs.

Importing mmequi (e.g. ``custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)``) registers its
modules, allow-lists the types of mmengine-saved checkpoints for torch's safe loading, and lets mmengine configs
parsed afterwards use the installed configs as bases: ``_base_ = ['mmequi::_base_/attacks/pgd_linf_eps4_50steps.py']``.
"""
from .utils.quiet import silence_library_noise

silence_library_noise()  # before mmengine / mmseg / mmdet are first imported

from .utils import allow_mmengine_checkpoints, register_config_package  # noqa: E402
from .version import __version__  # noqa: E402

allow_mmengine_checkpoints()
register_config_package()

from . import attacks, defenses, equivariance, evaluation, hooks, models, training  # noqa: E402,F401  (register on import)

__all__ = ['__version__']
