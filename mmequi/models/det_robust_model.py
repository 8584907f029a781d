"""The mmdet adapter: what the attack maximises (the detector's own training loss, in eval mode, with the test
pipeline's ground truth) and where the equivariance is measured (the neck's multi-level outputs)."""
import copy

import torch
from mmdet.registry import MODELS as DET_MODELS
from mmdet.structures.bbox import bbox2roi, bbox_overlaps

from mmequi.registry import MODELS

from .robust_model import RobustModel


class DetectionLoss:
    """Untargeted detection objective: the detector's training loss against the ground-truth instances, with the
    model kept in eval mode (frozen BN, no parameter change). The test pipeline loads annotations after Resize,
    so boxes and masks are first brought to network-input coordinates. RPN / R-CNN sample RoIs at random: every
    evaluation uses the same seed, so the attack is deterministic. ``dag_loss`` serves the DAG attack."""

    def __init__(self, wrapper, sample, seed=0):
        if 'gt_instances' not in sample or 'bboxes' not in sample.gt_instances:
            raise ValueError('attacking a detector needs gt_instances in the test data: add '
                             "dict(type='LoadAnnotations', with_bbox=True) to the test pipeline")
        self.wrapper, self.seed = wrapper, seed
        self.target = copy.deepcopy(sample)  # clone() would share (and rescale) the sample's gt_instances
        gt = self.target.gt_instances
        scale = sample.metainfo.get('scale_factor', (1.0, 1.0))
        if hasattr(gt.bboxes, 'rescale_'):  # BaseBoxes
            gt.bboxes.rescale_(scale)
        else:
            gt.bboxes = gt.bboxes * gt.bboxes.new_tensor([scale[0], scale[1], scale[0], scale[1]])
        if 'masks' in gt:
            gt.masks = gt.masks.resize(sample.metainfo['img_shape'])
        self.dag_targets = None

    def inputs(self, pixels):
        return self.wrapper.preprocess(pixels, copy.deepcopy(self.target))  # the preprocessor moves both to device

    def __call__(self, pixels):
        inputs, samples = self.inputs(pixels)
        with torch.random.fork_rng(devices=[]):  # the same RoI sampling at every step; global RNG untouched
            torch.manual_seed(self.seed)
            losses = self.wrapper.module.loss(inputs, samples)
        # The total the detector is trained on: mmengine's own sum of its ``loss*`` entries.
        return self.wrapper.module.parse_losses(losses)[0].reshape(1)

    def dag_loss(self, pixels, generator=None, iou_thr=0.3):
        """Dense adversary (Xie et al., ICCV 2017) on a two-stage detector: over the proposals that overlap a
        ground-truth box (chosen once, on the first call) and are still classified as their object, the margin
        logit[adversarial label] − logit[true label]; adversarial labels are random wrong classes."""
        model = self.wrapper.module
        if not hasattr(model, 'roi_head'):
            raise ValueError(f'the DAG attack needs a two-stage detector (an roi_head); got {type(model).__name__}')
        inputs, samples = self.inputs(pixels)
        feats = model.extract_feat(inputs)
        if self.dag_targets is None:
            with torch.no_grad():
                proposals = model.rpn_head.predict(feats, samples, rescale=False)[0].bboxes
                gt = samples[0].gt_instances
                gt_boxes = gt.bboxes.tensor if hasattr(gt.bboxes, 'tensor') else gt.bboxes
                boxes, labels = proposals.new_zeros((0, 4)), gt.labels.new_zeros((0, ))
                if len(gt_boxes) and len(proposals):
                    iou, index = bbox_overlaps(proposals, gt_boxes).max(1)
                    keep = iou >= iou_thr
                    boxes, labels = proposals[keep], gt.labels[index[keep]]
                classes = model.roi_head.bbox_head.num_classes
                shift = torch.randint(1, max(classes, 2), (len(labels), ), generator=generator).to(labels)
                self.dag_targets = (boxes, labels, (labels + shift) % classes)
        boxes, labels, adversarial = self.dag_targets
        if not len(boxes):
            return (pixels * 0).sum().reshape(1)  # nothing to flip: a zero (but differentiable) objective
        scores = model.roi_head._bbox_forward(feats, bbox2roi([boxes]))['cls_score']
        active = scores.argmax(1) == labels
        index = torch.arange(len(labels), device=scores.device)
        margin = scores[index, adversarial] - scores[index, labels]
        return (margin * active).sum().reshape(1)


@DET_MODELS.register_module()
@MODELS.register_module()
class DetRobustModel(RobustModel):
    """:class:`RobustModel` for any mmdet detector (two-stage, one-stage).

    ``feature``: ``'neck'`` (all FPN levels, each undone by the transform and compared at its own resolution),
    ``'neck.<i>'`` (level i) or ``'neck.<i>,<j>'`` (a selection), ``'backbone'`` / ``'backbone.<i>'``. Boxes are
    never the feature: the dense maps are. Default ``'neck.0'``, the finest FPN level (stride 4): on a development
    split of the synthetic COCO data (seed 7, not the reported val split) it recovered more AP under PGD than all
    five levels together, the backbone stages, a larger ε_v or fewer views (see docs/results.md).
    """
    default_feature = 'neck.0'
    feature_choices = ('neck', 'backbone')

    def task_objective(self, sample):
        return DetectionLoss(self, sample, seed=self.seed)

    def features(self, inputs, feature):
        model = self.module
        if feature.split('.')[0] == 'backbone' or not getattr(model, 'with_neck', True):
            return self.select(model.backbone(inputs), feature)
        return self.select(model.extract_feat(inputs), feature)
