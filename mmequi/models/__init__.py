"""Test-time wrappers: attack → purify → predict around an unchanged mmseg/mmdet model."""
from .det_robust_model import DetectionLoss, DetRobustModel
from .robust_model import PassCounter, RobustModel
from .seg_robust_model import PixelCrossEntropy, SegRobustModel


def robust_model_for(model):
    """The wrapper class for ``model``: SegRobustModel for mmseg segmentors, DetRobustModel for mmdet detectors."""
    from mmdet.models.detectors import BaseDetector
    from mmseg.models.segmentors import BaseSegmentor
    if isinstance(model, BaseSegmentor):
        return SegRobustModel
    if isinstance(model, BaseDetector):
        return DetRobustModel
    raise ValueError(f'no robust wrapper for {type(model).__name__}: mmequi supports mmseg segmentors and mmdet '
                     'detectors')


__all__ = ['RobustModel', 'SegRobustModel', 'DetRobustModel', 'DetectionLoss', 'PixelCrossEntropy', 'PassCounter',
           'robust_model_for']
