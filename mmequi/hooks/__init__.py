"""Hooks: ``RobustTestHook`` makes any mmseg/mmdet test run a robustness run."""
from .robust_test_hook import RobustTestHook

__all__ = ['RobustTestHook']
