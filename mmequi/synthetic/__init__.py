"""Deterministic synthetic datasets in the real Cityscapes, PASCAL VOC 2012 and COCO formats.

They let the segmentation / detection pipelines, tiny models and the equivariance defence be
trained and tested on CPU without downloading the real datasets: mmseg's ``CityscapesDataset`` /
``PascalVOCDataset`` and mmdet's ``CocoDataset`` / ``VOCDataset`` read them unchanged.
"""
from .cityscapes import CITYSCAPES_CLASSES, generate_cityscapes
from .coco import COCO_CLASSES, generate_coco
from .voc import VOC_CLASSES, generate_voc

# Name -> generator; each is ``f(root, num_train=..., num_val=..., size=..., seed=0, force=False)``.
GENERATORS = {'cityscapes': generate_cityscapes, 'voc': generate_voc, 'coco': generate_coco}

__all__ = ['generate_cityscapes', 'generate_voc', 'generate_coco', 'GENERATORS',
           'CITYSCAPES_CLASSES', 'VOC_CLASSES', 'COCO_CLASSES']
