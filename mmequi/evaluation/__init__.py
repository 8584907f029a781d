"""Metrics of robust test runs (the task metrics are mmseg's IoUMetric and mmdet's CocoMetric, unchanged)."""
from .equivariance_metric import EquivarianceMetric, roc_auc
from .robust_records import RobustRecordMetric, per_image_metrics
from .subset import evaluate_dataset_images_only

__all__ = ['EquivarianceMetric', 'RobustRecordMetric', 'per_image_metrics', 'roc_auc', 'evaluate_dataset_images_only']
