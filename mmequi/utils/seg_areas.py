"""Per-class pixel areas of one segmentation prediction: what an mIoU is made of. One entry point for the ensemble
attack's per-image choice (SEA: the candidate that lowers the running mIoU most) and the per-image records; the
counting itself is mmseg's (``IoUMetric.intersect_and_union``), so both agree with the reported mIoU."""
import torch


def intersection_and_union(predicted: torch.Tensor, label: torch.Tensor, num_classes: int = 0):
    """(intersection, union) per class, float64 CPU tensors of length ≥ ``num_classes`` (and covering every class
    present), from the valid pixels only: ``predicted`` and ``label`` are integer tensors of the same shape with
    ignored pixels already removed."""
    from mmseg.evaluation import IoUMetric  # lazy: mmequi.utils is imported before the codebases
    predicted, label = predicted.long().flatten(), label.long().flatten()
    length = max(num_classes, int(predicted.max()) + 1 if predicted.numel() else 0,
                 int(label.max()) + 1 if label.numel() else 0)
    if length == 0:
        return torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.float64)
    intersection, union, _, _ = IoUMetric.intersect_and_union(predicted, label, length, ignore_index=-1)
    return intersection.double(), union.double()
