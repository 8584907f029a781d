"""Metrics of robust test runs (the task metrics are mmseg's IoUMetric and mmdet's CocoMetric, unchanged)."""
from .equivariance_metric import EquivarianceMetric, roc_auc
from .subset import evaluate_dataset_images_only

__all__ = ['EquivarianceMetric', 'roc_auc', 'evaluate_dataset_images_only']
