"""Hooks: ``RobustTestHook`` makes any mmseg/mmdet test run a robustness run; ``RobustVisualizationHook`` draws
its pictures."""
from .robust_test_hook import RobustTestHook
from .robust_visualization_hook import RobustVisualizationHook

__all__ = ['RobustTestHook', 'RobustVisualizationHook']
