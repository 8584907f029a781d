from .config import SUPPORTED_SCOPES, load_config, task_scope

__all__ = ['SUPPORTED_SCOPES', 'load_config', 'task_scope']
