"""Metrics of robust test runs (the task metrics are mmseg's IoUMetric and mmdet's CocoMetric, unchanged)."""
from .equivariance_metric import EquivarianceMetric, roc_auc

__all__ = ['EquivarianceMetric', 'roc_auc']
