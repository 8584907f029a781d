from .checkpoint import SAFE_CHECKPOINT_GLOBALS, allow_mmengine_checkpoints

__all__ = ['SAFE_CHECKPOINT_GLOBALS', 'allow_mmengine_checkpoints']
