"""Dense Adversary Generation (Xie et al., ICCV 2017) for two-stage detectors: flip the classification of the
proposals that cover objects."""
from typing import Optional, Tuple

import torch

from mmequi.registry import ATTACKS

from .base import Attack


def dag_targets(objective, pixels: torch.Tensor, generator: Optional[torch.Generator] = None,
                iou_thr: float = 0.3) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(proposal boxes N×4, true labels N, adversarial labels N): the RPN proposals of ``pixels`` that overlap a
    ground-truth box by ``iou_thr`` or more, with the label of that box and a random wrong class each."""
    from mmdet.structures.bbox import bbox_overlaps
    model = objective.model
    with torch.no_grad():
        inputs, samples = objective.inputs(pixels)
        proposals = model.rpn_head.predict(model.extract_feat(inputs), samples, rescale=False)[0].bboxes
        gt = samples[0].gt_instances
        gt_boxes = gt.bboxes.tensor if hasattr(gt.bboxes, 'tensor') else gt.bboxes
        boxes, labels = proposals.new_zeros((0, 4)), gt.labels.new_zeros((0, ))
        if len(gt_boxes) and len(proposals):
            iou, index = bbox_overlaps(proposals, gt_boxes).max(1)
            keep = iou >= iou_thr
            boxes, labels = proposals[keep], gt.labels[index[keep]]
    classes = model.roi_head.bbox_head.num_classes
    shift = torch.randint(1, max(classes, 2), (len(labels), ), generator=generator).to(labels)
    return boxes, labels, (labels + shift) % classes


def dag_margin(objective, pixels: torch.Tensor, targets) -> torch.Tensor:
    """Σ over the target proposals still classified as their object of logit[adversarial] − logit[true] -> Tensor[1]."""
    from mmdet.structures.bbox import bbox2roi
    boxes, labels, adversarial = targets
    if not len(boxes):
        return (pixels * 0).sum().reshape(1)  # nothing to flip: a zero (but differentiable) objective
    model = objective.model
    inputs, _ = objective.inputs(pixels)
    scores = model.roi_head._bbox_forward(model.extract_feat(inputs), bbox2roi([boxes]))['cls_score']
    active = scores.argmax(1) == labels
    index = torch.arange(len(labels), device=scores.device)
    return ((scores[index, adversarial] - scores[index, labels]) * active).sum().reshape(1)


@ATTACKS.register_module()
class DAG(Attack):
    """DAG (Xie et al., "Adversarial Examples for Semantic Segmentation and Object Detection", ICCV 2017).

    Maximises, over the proposals that overlap a ground-truth object (chosen once, on the input image) and are still
    classified correctly, the margin logit[random wrong label] − logit[true label], within the same ε-ball as PGD.
    Needs a two-stage detector and a detection objective with ``model`` and ``inputs(pixels)`` (mmequi's
    :class:`~mmequi.models.DetectionLoss`). Arguments as :class:`Attack`.
    """

    def check_call(self, objective, context):
        super().check_call(objective, context)
        model = getattr(objective, 'model', None)
        if not callable(getattr(objective, 'inputs', None)) or model is None:
            raise ValueError('DAG needs a detection objective with model and inputs(pixels); got '
                             f'{type(objective).__name__}')
        if not hasattr(model, 'roi_head'):
            raise ValueError(f'the DAG attack needs a two-stage detector (an roi_head); got {type(model).__name__}')

    def loss(self, call, adv, step):
        if 'targets' not in call.memory:  # the proposals and adversarial labels, drawn at the first step
            call.memory['targets'] = dag_targets(call.objective, adv.detach(), call.generator)
        return dag_margin(call.objective, adv, call.memory['targets'])
