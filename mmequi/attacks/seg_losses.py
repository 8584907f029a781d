"""Per-image segmentation losses an attack can maximise instead of the plain pixel cross-entropy
(docs/method.md, "Attacks for evaluation").

Each takes ``(logits B×C×h×w, labels B×h×w, valid B×h×w bool, progress)`` at the label's resolution, where
``progress = step / steps`` in [0, 1), and returns Tensor[B]. Ignored pixels (not ``valid``) count nowhere. A
segmentation objective provides the inputs through ``logits_and_labels(images)``.

The losses of SEA (Croce, Singh, Hein, "Towards Reliable Evaluation and Fast Training of Robust Semantic
Segmentation Models", ECCV 2024) each stop pushing where the attack has already won, in a different way, which is
why an ensemble of them is stronger than any one: masked CE drops the pixels that are already wrong, balanced CE
gives every class present the same weight (small objects are not drowned by road), JS divergence saturates once a
pixel's prediction is far from its label. CosPGD (Agnihotri, Jung, Keuper, ICML 2024) weights each pixel's CE by
the cosine between its softmax and its one-hot label, so the still-correct pixels get most of the step.
"""
import math

import torch
import torch.nn.functional as F


def segpgd_weighted(ce, correct, valid, progress):
    """SegPGD (Gu et al., ECCV 2022): (1−λ)·Σ_correct CE / N + λ·Σ_wrong CE / N with λ = progress / 2, N = the
    valid pixels: early steps push the still-correct pixels over the boundary, later ones keep the wrong ones
    wrong."""
    lam = progress / 2
    weight = torch.where(correct.bool(), 1.0 - lam, lam).to(ce.dtype) * valid.to(ce.dtype)
    return (ce * weight).flatten(1).sum(1) / _count(valid, ce)


def _count(valid, like):
    return valid.flatten(1).sum(1).clamp_min(1).to(like.dtype)


def _ce(logits, labels, valid):
    # ignored labels may lie outside [0, C): give them class 0, their value is masked out anyway
    return F.cross_entropy(logits, torch.where(valid, labels, 0), reduction='none') * valid.to(logits.dtype)


def _label_probability(logits, labels, valid):
    return logits.softmax(1).gather(1, torch.where(valid, labels, 0).unsqueeze(1)).squeeze(1)


def cross_entropy(logits, labels, valid, progress):
    """Mean pixel CE over the valid pixels (the task objective of a segmentor)."""
    return _ce(logits, labels, valid).flatten(1).sum(1) / _count(valid, logits)


def masked_cross_entropy(logits, labels, valid, progress):
    """CE summed over the pixels still classified correctly, divided by all valid pixels (SEA's mask-CE)."""
    correct = (logits.argmax(1) == labels) & valid
    return (_ce(logits, labels, valid) * correct).flatten(1).sum(1) / _count(valid, logits)


def balanced_cross_entropy(logits, labels, valid, progress):
    """Mean over the classes present in the image of their pixels' mean CE (SEA's class-balanced CE)."""
    ce = _ce(logits, labels, valid)
    classes = torch.where(valid, labels, logits.shape[1]).flatten(1)  # ignored pixels go to an extra bin
    counts = ce.new_zeros(ce.shape[0], logits.shape[1] + 1).scatter_add_(1, classes, torch.ones_like(ce).flatten(1))
    counts = counts[:, :-1]  # B×C: pixels of each class
    per_pixel = counts.gather(1, torch.where(valid, labels, 0).flatten(1)).view_as(ce).clamp_min(1)
    present = (counts > 0).sum(1).clamp_min(1).to(ce.dtype)
    return (ce / per_pixel).flatten(1).sum(1) / present


def js_divergence(logits, labels, valid, progress):
    """Mean Jensen–Shannon divergence between the softmax p and the one-hot label e_y (SEA). With m = (p + e_y)/2
    it has a closed form in p_y alone: ½[(1−p_y)·log 2 + p_y·log(2p_y/(1+p_y))] + ½·log(2/(1+p_y))."""
    p = _label_probability(logits, labels, valid).clamp(1e-12, 1.0)
    js = 0.5 * ((1 - p) * math.log(2) + p * torch.log(2 * p / (1 + p))) + 0.5 * torch.log(2 / (1 + p))
    return (js * valid.to(js.dtype)).flatten(1).sum(1) / _count(valid, logits)


def cospgd(logits, labels, valid, progress):
    """CosPGD: mean over valid pixels of cos(softmax, e_y) · CE, the cosine a constant weight (not differentiated)."""
    probabilities = logits.softmax(1)
    label_p = probabilities.gather(1, torch.where(valid, labels, 0).unsqueeze(1)).squeeze(1)
    cosine = (label_p / probabilities.norm(dim=1).clamp_min(1e-12)).detach()
    return (cosine * _ce(logits, labels, valid)).flatten(1).sum(1) / _count(valid, logits)


def segpgd(logits, labels, valid, progress):
    """SegPGD's scheduled weighting of correct and wrong pixels (see :func:`segpgd_weighted`)."""
    return segpgd_weighted(_ce(logits, labels, valid), (logits.argmax(1) == labels) & valid, valid, progress)


SEG_LOSSES = {'ce': cross_entropy, 'masked_ce': masked_cross_entropy, 'balanced_ce': balanced_cross_entropy,
              'js': js_divergence, 'cospgd': cospgd, 'segpgd': segpgd}


def check_seg_loss(name, what='loss'):
    if name not in SEG_LOSSES:
        raise ValueError(f'unknown segmentation {what} {name!r}; expected one of {sorted(SEG_LOSSES)}')
    return name


def seg_loss(name, objective, images, progress):
    """Tensor[B]: the segmentation loss ``name`` of ``objective`` (which provides ``logits_and_labels``) at
    ``images``."""
    logits, labels, valid = objective.logits_and_labels(images)
    return SEG_LOSSES[name](logits, labels.long(), valid.bool(), progress)
