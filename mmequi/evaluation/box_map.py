"""A detector's bbox mAP from per-image records, for any draw of the images.

mAP is not a sum over images, so a bootstrap interval over images (``statistics.py``) cannot add per-image figures
as it does for segmentation. pycocotools scores in two stages, though: ``evaluate`` matches each image's boxes to
its objects (per image, category and area range), and ``accumulate`` sorts every matched box of the evaluated images
by score into precision and recall. The first stage runs once per run here; each draw of images (an image drawn
twice counts twice) only re-runs the second on the drawn images' matches. That is what mmdet's ``CocoMetric`` would
report for a dataset holding the drawn images (same annotation file, categories, IoU thresholds, detection limits).
"""
import contextlib
import copy
import io
from typing import Dict, List, Sequence

import numpy as np
from mmengine.config import Config

from mmequi.apis.config import evaluators

BOX_METRICS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')  # CocoMetric's names of stats[0:6]
PROPOSAL_NUMS = [100, 300, 1000]  # CocoMetric's default maxDets; mAP reads the first, AR@1000 the last
Records = Dict[str, dict]  # {img_path: that image's metrics}, with RobustRecordMetric's boxes (robust_records.py)


class ScoredBoxes:
    """One run's boxes matched to the objects of its images (pycocotools ``evaluate``, once); :meth:`stats` of any
    draw of its images accumulates their matches."""

    def __init__(self, evaluation, positions: Dict[str, int]):
        self.evaluation, self.positions = evaluation, positions

    def stats(self, images: Sequence[str]) -> np.ndarray:
        """pycocotools' 12 summary figures on ``images`` (repeats count again), as ``COCOeval.summarize`` sets
        them."""
        if self.evaluation is None:  # no image of the run has a box: nothing was found (CocoMetric stops there)
            return np.zeros(12)
        draw = self.draw(images)
        with contextlib.redirect_stdout(io.StringIO()):
            draw.accumulate()
            draw.summarize()
        return np.asarray(draw.stats)

    def map(self, images: Sequence[str]) -> float:
        """``stats(images)[0]`` alone (IoU 0.50:0.95, all areas, 100 boxes per image), accumulated for that figure
        only: a twelfth of the work, for the bootstrap's thousands of draws."""
        if self.evaluation is None:
            return 0.0
        draw = self.draw(images)
        only = copy.deepcopy(draw.params)
        only.areaRng, only.areaRngLbl, only.maxDets = only.areaRng[:1], only.areaRngLbl[:1], [100]  # 'all' is first
        with contextlib.redirect_stdout(io.StringIO()):
            draw.accumulate(only)
        precision = draw.eval['precision']
        return float(precision[precision > -1].mean()) if (precision > -1).any() else -1.0

    def draw(self, images: Sequence[str]):
        """A copy of the evaluation that holds the matches of ``images`` (in that order, repeats repeated)."""
        base = self.evaluation
        drawn = [self.positions[image] for image in images]
        count, areas, categories = len(base._paramsEval.imgIds), len(base.params.areaRng), len(base.params.catIds)
        draw = copy.copy(base)
        draw.params, draw._paramsEval = copy.deepcopy(base.params), copy.deepcopy(base._paramsEval)
        draw.params.imgIds = draw._paramsEval.imgIds = list(range(len(drawn)))
        # evalImgs is laid out [category][area range][image]
        draw.evalImgs = [base.evalImgs[(k * areas + a) * count + i]
                         for k in range(categories) for a in range(areas) for i in drawn]
        return draw


class RecordsBoxMAP:
    """Callable ``(records, images) -> bbox mAP`` of the records' boxes on ``images`` (repeats count again);
    :meth:`scored` matches a run's boxes once for many draws.

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
        coco = [m for kind, m in evaluators(cfg) if kind.endswith('CocoMetric') and m.get('ann_file')]
        if not coco:
            raise ValueError('the config has no CocoMetric with an ann_file in test_evaluator: no mAP per draw')
        dataset = cfg.test_dataloader.dataset
        classes = (dataset.get('metainfo') or {}).get('classes') or DATASETS.get(dataset.type).METAINFO['classes']
        return cls(coco[0].ann_file, classes)

    def __call__(self, records: Records, images: Sequence[str]) -> float:
        """bbox mAP (IoU 0.50:0.95, unrounded)."""
        return self.scored(records).map(images)

    def metrics(self, records: Records, images: Sequence[str]) -> Dict[str, float]:
        """``CocoMetric``'s bbox figures, named and rounded as it reports them (``coco/bbox_mAP``, ``_50``, ``_75``,
        ``_s``, ``_m``, ``_l``): the metrics of image shards merged into one run."""
        stats = self.scored(records).stats(images)
        return {f'coco/bbox_{name}': float(f'{stats[i]:.3f}') for i, name in enumerate(BOX_METRICS)}

    def scored(self, records: Records) -> ScoredBoxes:
        """Every recorded image's boxes matched to its objects (``COCOeval.evaluate``), as CocoMetric matches them:
        ``xyxy`` boxes as ``xywh``, labels as category ids, its IoU thresholds and detection limits."""
        from mmdet.datasets.api_wrappers import COCO, COCOeval
        missing = [image for image, record in records.items() if record.get('img_id') not in self.coco.imgs]
        if missing:
            raise ValueError(f'{len(missing)} records have no img_id of the annotation file, e.g. {missing[0]} '
                             '(records without boxes: written before 2026-12-07?)')
        boxes: List[dict] = []
        for record in records.values():
            boxes += [dict(image_id=record['img_id'], bbox=[x1, y1, x2 - x1, y2 - y1], score=score,
                           category_id=self.cat_ids[label])
                      for (x1, y1, x2, y2), score, label in zip(record['bboxes'], record['scores'], record['labels'])]
        ids = sorted({record['img_id'] for record in records.values()})
        if not boxes:
            return ScoredBoxes(None, {})
        with contextlib.redirect_stdout(io.StringIO()):
            evaluation = COCOeval(self.coco, self.coco.loadRes(boxes), 'bbox')
            evaluation.params.catIds, evaluation.params.imgIds = self.cat_ids, ids
            evaluation.params.maxDets = list(PROPOSAL_NUMS)
            evaluation.evaluate()
        position = {img_id: i for i, img_id in enumerate(evaluation._paramsEval.imgIds)}
        return ScoredBoxes(evaluation, {image: position[record['img_id']] for image, record in records.items()})
