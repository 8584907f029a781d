"""Per-class pixel areas of one segmentation prediction: what an mIoU is made of. One definition for the ensemble
attack's per-image choice (SEA: the candidate that lowers the running mIoU most) and the per-image records."""
import torch


def intersection_and_union(predicted: torch.Tensor, label: torch.Tensor, num_classes: int = 0):
    """(intersection, union) per class, float64 tensors of length ≥ ``num_classes``, from the valid pixels only:
    ``predicted`` and ``label`` are integer tensors of the same shape with ignored pixels already removed."""
    predicted, label = predicted.long().flatten(), label.long().flatten()
    length = max(num_classes, int(predicted.max()) + 1 if predicted.numel() else 0,
                 int(label.max()) + 1 if label.numel() else 0)
    intersection = torch.bincount(label[predicted == label], minlength=length).double()
    union = (torch.bincount(predicted, minlength=length) + torch.bincount(label, minlength=length)).double()
    return intersection, union - intersection
