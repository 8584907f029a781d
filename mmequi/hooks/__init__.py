"""Hooks: ``RobustTestHook`` makes any mmseg/mmdet test run a robustness run; ``RobustVisualizationHook`` draws
its pictures; ``AdversarialTrainingHook`` makes a training run adversarial training."""
from .adversarial_training_hook import AdversarialTrainingHook
from .robust_test_hook import RobustTestHook
from .robust_visualization_hook import RobustVisualizationHook

__all__ = ['AdversarialTrainingHook', 'RobustTestHook', 'RobustVisualizationHook']
