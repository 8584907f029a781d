"""mmequi: restore equivariance at inference time to make OpenMMLab models robust to adversarial inputs.

Importing mmequi (e.g. ``custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)``) registers its
modules and allow-lists the types of mmengine-saved checkpoints for torch's safe loading.
"""
from .utils import allow_mmengine_checkpoints
from .version import __version__

allow_mmengine_checkpoints()

from . import attacks, defenses, equivariance, evaluation, hooks, models  # noqa: E402,F401  (register on import)

__all__ = ['__version__']
