"""Per-class pixel areas of segmentation predictions, and every reduction of them: the one home of the arithmetic
behind an mIoU in mmequi (the SEA-style ensemble's choice, the per-image records, the report's shard merge, its
worst case per image and its convergence intervals).

Counting and metrics are mmseg's own (``IoUMetric.intersect_and_union``, ``IoUMetric.total_area_to_metrics``), so
:func:`dataset_metrics` over per-image records equals ``IoUMetric`` over the same images exactly. An image's areas
travel as ``{class: [intersection, union, label]}`` (integer pixel counts, the classes with a union only): what the
per-image records hold.
"""
from typing import Dict, Iterable, List, Sequence

import numpy as np
import torch

Areas = Dict[int, List[int]]  # {class: [intersection, union, label]} of one image (or summed over several)


def _iou_metric():
    from mmseg.evaluation import IoUMetric  # lazy: mmequi.evaluation is imported before the codebases register
    return IoUMetric


def class_areas(predicted: torch.Tensor, label: torch.Tensor, num_classes: int = 0) -> Areas:
    """The areas of one prediction, from its valid pixels (``predicted`` and ``label`` integer tensors of the same
    shape, ignored pixels already removed), counted by mmseg; every class with a union, ``num_classes`` or more."""
    predicted, label = predicted.long().flatten(), label.long().flatten()
    length = max(num_classes, int(predicted.max()) + 1 if predicted.numel() else 0,
                 int(label.max()) + 1 if label.numel() else 0)
    if length == 0:
        return {}
    intersection, union, _, labelled = _iou_metric().intersect_and_union(predicted, label, length, ignore_index=-1)
    return {c: [int(intersection[c]), int(union[c]), int(labelled[c])] for c in torch.nonzero(union).flatten().tolist()}


def add_areas(total: Areas, areas: Areas) -> Areas:
    """``total`` plus one image's ``areas`` (a new dict; class by class, kind by kind)."""
    total = {c: list(v) for c, v in total.items()}
    for c, per_class in areas.items():
        total[c] = [a + b for a, b in zip(total[c], per_class)] if c in total else list(per_class)
    return total


def sum_areas(images: Iterable[Areas]) -> Areas:
    """The areas of several images (repeats count again)."""
    total = {}
    for areas in images:
        total = add_areas(total, areas)
    return total


def miou(areas: Areas) -> float:
    """mIoU (%), unrounded: the mean IoU over the classes with a union (IoUMetric's nanmean)."""
    ious = [i / u for i, u, *_ in areas.values() if u > 0]
    return 100 * sum(ious) / len(ious) if ious else 0.0


def worst_choice(total: Areas, options: Sequence[Areas]) -> int:
    """SEA's rule for one image: the index of the option (that image's areas under each attack) that lowers the
    mIoU of ``total`` (the images chosen so far) most; the first such on a tie."""
    scores = [miou(add_areas(total, areas)) for areas in options]
    return min(range(len(scores)), key=scores.__getitem__)


def pixel_accuracy(areas: Areas) -> float:
    """Share of the valid pixels predicted right (%), unrounded."""
    labelled = sum(v[2] for v in areas.values())
    return 100 * sum(v[0] for v in areas.values()) / labelled if labelled else 0.0


def dataset_metrics(images: Sequence[Areas], num_classes: int) -> Dict[str, float]:
    """aAcc, mIoU and mAcc (%) over ``images`` (per-image areas in dataset order) exactly as mmseg's IoUMetric
    (``iou_metrics=['mIoU']``) computes them for a dataset of ``num_classes`` classes: per-image float32 area vectors
    summed in order, ``total_area_to_metrics``, the nanmean over classes, rounded to 2 decimals."""
    if not images:
        raise ValueError('dataset_metrics needs the areas of at least one image')
    metric = _iou_metric()

    def vector(areas, kind):  # kind: 0 intersection, 1 union, 2 label, 3 predicted (= union + intersection − label)
        out = torch.zeros(num_classes, dtype=torch.float32)
        for c, (i, u, n) in areas.items():  # class keys may be strings (read back from JSON)
            if int(c) >= num_classes:
                raise ValueError(f'class {c} in the per-image areas, but the dataset has {num_classes} classes')
            out[int(c)] = (i, u, n, u + i - n)[kind]
        return out
    totals = [sum(vector(areas, kind) for areas in images) for kind in range(4)]
    ret = metric.total_area_to_metrics(totals[0], totals[1], totals[3], totals[2], ['mIoU'], None, 1)
    summary = {k: np.round(np.nanmean(v) * 100, 2) for k, v in ret.items()}
    return {('aAcc' if k == 'aAcc' else 'm' + k): float(v) for k, v in summary.items()}


__all__ = ['Areas', 'class_areas', 'add_areas', 'sum_areas', 'miou', 'worst_choice', 'pixel_accuracy',
           'dataset_metrics']
