from .checkpoint import SAFE_CHECKPOINT_GLOBALS, allow_mmengine_checkpoints
from .configs import register_config_package

__all__ = ['SAFE_CHECKPOINT_GLOBALS', 'allow_mmengine_checkpoints', 'register_config_package']
