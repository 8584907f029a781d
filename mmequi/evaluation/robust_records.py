"""Per-image records of a robust test run, written by a metric: mmengine's evaluator hands every rank's results to
``compute_metrics`` once, in dataset order (``collect_results``), so nothing is gathered by hand."""
import json
import os
import os.path as osp
from typing import Optional

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS

from .areas import class_areas, dataset_metrics, miou, pixel_accuracy
from .box_map import BOX_METRICS
from .equivariance_metric import STAGES, roc_auc


def field(sample, key):
    """``sample.key`` of a data sample, or ``sample[key]`` of the dict the evaluator turns it into."""
    return sample[key] if isinstance(sample, dict) else getattr(sample, key)


def per_image_metrics(prediction, sample, ignore_index=255):
    """The image's own figures (data samples or their dicts). Segmentation: pixel accuracy, mIoU over the classes in
    the label or the prediction, each of those classes' IoU (%) and its pixel areas [intersection, union, label]
    (what a dataset's aAcc, mIoU and mAcc over several images, or a worst case per image, are computed from).
    Detection: detections with score ≥ 0.3, ground-truth boxes, and every predicted box (x1, y1, x2, y2 in the
    original image), score and label with the image's ``img_id``, unrounded (float32 values survive JSON exactly):
    what mmdet's ``CocoMetric`` scores, so that the bbox figures of any draw of the images, or of image shards
    merged, are the run's own (``box_map.py``)."""
    if 'pred_sem_seg' in prediction and 'gt_sem_seg' in sample:
        predicted = field(field(prediction, 'pred_sem_seg'), 'data')[0].cpu()
        label = field(field(sample, 'gt_sem_seg'), 'data')[0].cpu()
        valid = label != ignore_index
        areas = class_areas(predicted[valid], label[valid])
        return dict(aAcc=pixel_accuracy(areas), mIoU=miou(areas),
                    class_iou={c: 100 * i / u for c, (i, u, _) in areas.items()}, class_areas=areas)
    if 'pred_instances' in prediction:
        gt = field(sample, 'gt_instances') if 'gt_instances' in sample else None
        boxes = field(prediction, 'pred_instances')
        scores = field(boxes, 'scores').detach().cpu()
        return dict(detections=int((scores >= 0.3).sum()), gt_boxes=None if gt is None else len(field(gt, 'labels')),
                    img_id=field(sample, 'img_id') if 'img_id' in sample else None,
                    bboxes=field(boxes, 'bboxes').detach().cpu().tolist(), scores=scores.tolist(),
                    labels=field(boxes, 'labels').detach().cpu().tolist())
    return {}


def relative_path(path, data_root=None):
    """An image's path relative to ``data_root`` (as given without one; None without a path): the key of its random
    draws and of its record, whatever the root's spelling."""
    if path is not None and data_root:
        path = osp.relpath(osp.abspath(path), osp.abspath(data_root))
    return path


@METRICS.register_module()  # mmengine's root registry: found under default_scope mmseg and mmdet alike
class RobustRecordMetric(BaseMetric):
    """One record per image of a robust test run (its figures, equivariance score per stage, seconds and network
    passes), written to ``out_dir/per_image.jsonl`` in dataset order; the run's mean cost per image is kept in
    ``summary`` (rank 0) for ``robustness.json``. Reports no metric of its own.

    Args:
        out_dir: where ``per_image.jsonl`` goes (``RobustTestHook`` passes the run's log dir); None writes nothing.
        data_root: image paths are recorded relative to it.
        ignore_index: label value left out of the per-image areas.
    """
    default_prefix = 'robust'

    def __init__(self, out_dir: Optional[str] = None, data_root: Optional[str] = None, ignore_index: int = 255,
                 collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.out_dir, self.data_root, self.ignore_index = out_dir, data_root, ignore_index
        self.summary = {}

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            self.results.append(dict(
                img_path=relative_path(sample.get('img_path'), self.data_root), img_id=sample.get('img_id'),
                metrics=per_image_metrics(sample, sample, self.ignore_index),
                equivariance=sample.get('equivariance_scores', {}), seconds=sample.get('robust_seconds', {}),
                passes=sample.get('robust_passes', {})))

    def compute_metrics(self, results):
        if self.out_dir is not None:
            os.makedirs(self.out_dir, exist_ok=True)
            with open(osp.join(self.out_dir, 'per_image.jsonl'), 'w') as f:
                f.writelines(json.dumps(record, default=str) + '\n' for record in results)
        seconds = [r['seconds'] for r in results]
        counted = [r['passes'] for r in results if r['passes']]
        self.summary = dict(
            seconds_per_image={key: float(np.mean([s[key] for s in seconds if key in s]))
                               for key in ('attack', 'defense') if any(key in s for s in seconds)},
            passes_per_image={key: float(np.mean([p[key] for p in counted])) for key in counted[0]} if counted else {},
            images=len(results))
        return {}


def metrics_from_records(lines, keys, num_classes, boxes=None):
    """The metrics of several runs' per-image records ``lines`` (in image order) as one run over all their images
    computes them: mmseg's IoUMetric (aAcc, mIoU, mAcc, exactly: ``dataset_metrics`` of the per-image class areas of
    a dataset of ``num_classes`` classes), mmdet's CocoMetric bbox figures (re-scored from the records' boxes by
    ``boxes``, a ``box_map.RecordsBoxMAP``) and mmequi's EquivarianceMetric (mean score per stage, ROC-AUC). Every
    key of ``keys`` (one run's metrics) must be among them."""
    segmentation = {'aAcc', 'mIoU', 'mAcc'}
    detection = {f'coco/bbox_{name}' for name in BOX_METRICS} if boxes is not None else set()
    mergeable = segmentation | detection | {f'equivariance/{s}' for s in (*STAGES, 'auc_clean_vs_attacked')}
    unknown = sorted(set(keys) - mergeable)
    if unknown:
        raise ValueError(f'cannot merge {unknown} from per-image records (shards merge mmseg\'s mIoU, aAcc, mAcc and '
                         "mmdet's bbox CocoMetric)")
    metrics = {}
    if segmentation & set(keys):
        areas = [line['metrics'].get('class_areas') for line in lines]
        if any(a is None or any(len(v) < 3 for v in a.values()) for a in areas):
            raise ValueError('cannot merge mIoU from per-image records without label areas')
        metrics.update(dataset_metrics(areas, num_classes))
    if detection & set(keys):
        if not all('bboxes' in line['metrics'] for line in lines):
            raise ValueError('cannot merge bbox mAP from per-image records without their boxes')
        records = {line['img_path']: line['metrics'] for line in lines}
        metrics.update(boxes.metrics(records, list(records)))
    stages = [s for s in STAGES if all(s in line.get('equivariance', {}) for line in lines)]
    metrics.update({f'equivariance/{s}': float(np.mean([line['equivariance'][s] for line in lines])) for s in stages})
    if 'attacked' in stages:
        metrics['equivariance/auc_clean_vs_attacked'] = roc_auc([line['equivariance']['clean'] for line in lines],
                                                                [line['equivariance']['attacked'] for line in lines])
    return {k: metrics[k] for k in keys}
