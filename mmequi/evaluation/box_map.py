"""A detector's bbox mAP from per-image records, for any draw of the images.

mAP is not a sum over images, so a bootstrap interval over images (``statistics.py``) cannot add per-image figures
as it does for segmentation. It re-scores instead: each draw is written as its own small COCO dataset (an image
drawn twice is two images, with its objects and boxes twice) and scored by pycocotools as mmdet's ``CocoMetric``
scores a run (same annotation file, categories, IoU thresholds and detection limits).
"""
import contextlib
import io
from typing import Dict, Sequence

from mmengine.config import Config

BOX_METRICS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')  # CocoMetric's names of stats[0:6]
Records = Dict[str, dict]  # {img_path: that image's metrics}, with RobustRecordMetric's boxes (robust_records.py)


class RecordsBoxMAP:
    """Callable ``(records, images) -> bbox mAP`` of the records' boxes on ``images`` (repeats count again).

    Args:
        ann_file: the COCO annotation file the run was scored against.
        classes: the dataset's class names, in label order (labels index them; ``CocoMetric``'s ``cat_ids``).
    """

    def __init__(self, ann_file: str, classes: Sequence[str]):
        from mmdet.datasets.api_wrappers import COCO
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco = COCO(ann_file)
        self.cat_ids = self.coco.get_cat_ids(cat_names=list(classes))
        if len(self.cat_ids) != len(classes):
            raise ValueError(f'classes {list(classes)} are not all categories of {ann_file}')

    @classmethod
    def from_config(cls, cfg: Config) -> 'RecordsBoxMAP':
        """The scorer of a detector config: its test evaluator's ``CocoMetric`` annotation file and its test
        dataset's classes (the dataset type's own when the config names none)."""
        from mmdet.registry import DATASETS
        metrics = cfg.test_evaluator if isinstance(cfg.test_evaluator, (list, tuple)) else [cfg.test_evaluator]
        coco = [m for m in metrics if m.get('type', '').endswith('CocoMetric') and m.get('ann_file')]
        if not coco:
            raise ValueError('the config has no CocoMetric with an ann_file in test_evaluator: no mAP per draw')
        dataset = cfg.test_dataloader.dataset
        classes = (dataset.get('metainfo') or {}).get('classes') or DATASETS.get(dataset.type).METAINFO['classes']
        return cls(coco[0].ann_file, classes)

    def __call__(self, records: Records, images: Sequence[str]) -> float:
        """bbox mAP (IoU 0.50:0.95, unrounded)."""
        return float(self.evaluate(records, images)[0])

    def metrics(self, records: Records, images: Sequence[str]) -> Dict[str, float]:
        """``CocoMetric``'s bbox figures, named and rounded as it reports them (``coco/bbox_mAP``, ``_50``, ``_75``,
        ``_s``, ``_m``, ``_l``): the metrics of image shards merged into one run."""
        stats = self.evaluate(records, images)
        return {f'coco/bbox_{name}': float(f'{stats[i]:.3f}') for i, name in enumerate(BOX_METRICS)}

    def evaluate(self, records: Records, images: Sequence[str]) -> list:
        """pycocotools' 12 summary figures of the draw (all 0 when no image has a box: nothing was found, where
        ``CocoMetric`` stops with an error)."""
        from mmdet.datasets.api_wrappers import COCO, COCOeval
        truth = dict(images=[], annotations=[], categories=self.coco.dataset['categories'])
        boxes = []
        for new_id, image in enumerate(images, start=1):  # ids from 1: pycocotools reads 0 as "unmatched"
            record = records[image]
            truth['images'].append(dict(self.coco.imgs[record['img_id']], id=new_id))
            truth['annotations'] += [dict(a, id=len(truth['annotations']) + 1 + k, image_id=new_id)
                                     for k, a in enumerate(self.coco.imgToAnns[record['img_id']])]
            boxes += [dict(image_id=new_id, bbox=[x1, y1, x2 - x1, y2 - y1], score=score,
                           category_id=self.cat_ids[label])
                      for (x1, y1, x2, y2), score, label in zip(record['bboxes'], record['scores'], record['labels'])]
        if not boxes:
            return [0.0] * 12
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = truth
            gt.createIndex()
            scored = COCOeval(gt, gt.loadRes(boxes), 'bbox')
            scored.params.catIds = self.cat_ids
            scored.params.maxDets = [100, 300, 1000]  # CocoMetric's proposal_nums; mAP reads the last
            scored.evaluate()
            scored.accumulate()
            scored.summarize()
        return list(scored.stats)
