"""The synthetic test bed: deterministic datasets in the real Cityscapes, PASCAL VOC 2012 and COCO
formats.

They let the segmentation / detection pipelines, tiny models and the equivariance defence be
trained and tested on CPU without downloading the real datasets: mmseg's ``CityscapesDataset`` /
``PascalVOCDataset`` and mmdet's ``CocoDataset`` / ``VOCDataset`` read them unchanged. Not part of
the installed ``mmequi`` library (``python -m testbed`` and the tests use it from a checkout).

    painter.py      colours, textures, sprites, the canvas, cluttered backdrops
    objects.py      the objects (people, vehicles, animals, furniture, street furniture)
    cityscapes.py   street scenes          voc.py   VOC object scenes     coco.py   COCO scenes
    files.py        the generators: file layouts, label PNGs, annotations, reuse of a generation
    cli.py          ``python -m testbed {cityscapes,voc,coco,all}`` (``__main__.py``)
"""
from .cityscapes import CITYSCAPES_CLASSES
from .coco import COCO_CLASSES
from .files import generate_cityscapes, generate_coco, generate_voc, voc_palette
from .voc import MIN_PIXELS, VOC_CLASSES, voc_box

# Name -> generator; each is ``f(root, num_train=..., num_val=..., size=..., seed=0, force=False)``.
GENERATORS = {'cityscapes': generate_cityscapes, 'voc': generate_voc, 'coco': generate_coco}

__all__ = ['generate_cityscapes', 'generate_voc', 'generate_coco', 'GENERATORS',
           'CITYSCAPES_CLASSES', 'VOC_CLASSES', 'COCO_CLASSES', 'MIN_PIXELS', 'voc_box',
           'voc_palette']
