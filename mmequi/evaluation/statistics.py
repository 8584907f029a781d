"""Statistics over the per-image records of several runs on the same images: bootstrap intervals over images, the
convergence verdict of an attack's steps sweep, and the worst case per image (SEA's rule). A run's records here are
``{img_path: per-image metrics}`` (``aAcc``; ``class_areas`` for segmentation; boxes for detection), as
``RobustRecordMetric`` writes them.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

from .areas import add_areas, miou, sum_areas, worst_choice

Records = Dict[str, dict]  # {img_path: that image's metrics} of one run


def records_miou(records: Records, images: Sequence[str]) -> float:
    """mIoU (%) over ``images`` (repeats count again) from their per-image class areas."""
    return miou(sum_areas(records[image]['class_areas'] for image in images))


def bootstrap_draws(images: Sequence[str], resamples: int, rng: np.random.Generator) -> List[List[str]]:
    """``resamples`` resamplings of ``images`` with replacement, each as long as ``images`` (shared by the runs a
    paired interval compares: the same images for both)."""
    return [[images[i] for i in rng.integers(len(images), size=len(images))] for _ in range(resamples)]


def paired_interval(after: Sequence[float], before: Sequence[float]) -> tuple:
    """95 % interval of a paired change over bootstrap draws: ``after[d] − before[d]``, each the metric of one run on
    draw ``d`` of their common images (mIoU from class areas, or a detector's mAP, ``box_map.py``)."""
    low, high = np.percentile(np.asarray(after) - np.asarray(before), [2.5, 97.5])
    return low, high


def verdict(low: float, high: float) -> str:
    """A change judged against its interval: it falls (or rises) only when the whole interval says so."""
    return 'falls' if high < 0 else 'rises' if low > 0 else 'flat within noise'


def worst_per_image(runs: Dict[str, Records], images: Sequence[str]) -> dict:
    """The worst case over several attacks' runs on ``images``, against the worst single attack:
    ``accuracy``: (worst single attack, its mean aAcc per image, the mean over images of each image's lowest aAcc);
    ``miou`` (None unless every record has class areas): (worst single attack, its mIoU, the mIoU of SEA's rule:
    image by image the attack whose prediction lowers the running mIoU most)."""
    mean_acc = {a: sum(r[i]['aAcc'] for i in images) / len(images) for a, r in runs.items()}
    single = min(mean_acc, key=mean_acc.get)
    worst_acc = sum(min(r[i]['aAcc'] for r in runs.values()) for i in images) / len(images)
    result = dict(accuracy=(single, mean_acc[single], worst_acc), miou=None)
    if all('class_areas' in r[i] for r in runs.values() for i in images):
        by_attack = {a: records_miou(r, images) for a, r in runs.items()}
        total, attacks = {}, list(runs.values())
        for i in images:
            total = add_areas(total, attacks[worst_choice(total, [r[i]['class_areas'] for r in attacks])][i]
                              ['class_areas'])
        single = min(by_attack, key=by_attack.get)
        result['miou'] = (single, by_attack[single], miou(total))
    return result


def common_images(runs: Sequence[Optional[Records]]) -> List[str]:
    """The images every run has, sorted."""
    return sorted(set.intersection(*(set(r) for r in runs)))


__all__ = ['records_miou', 'bootstrap_draws', 'paired_interval', 'verdict', 'worst_per_image', 'common_images']
