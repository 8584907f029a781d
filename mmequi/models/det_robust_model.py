"""The mmdet adapter: what the attack maximises (the detector's own training loss, in eval mode, with the test
pipeline's ground truth) and where the equivariance is measured (the neck's multi-level outputs)."""
import contextlib
import copy

import torch
from mmdet.models.test_time_augs import DetTTAModel
from mmdet.models.utils import weighted_boxes_fusion
from mmdet.registry import MODELS as DET_MODELS
from mmdet.structures.bbox import bbox_flip
from mmengine.config import ConfigDict
from mmengine.logging import MessageHub
from mmengine.structures import InstanceData, PixelData

from .robust_model import RobustModel, loss_mode, preprocess


def predicting_detector(model):
    """The detector whose loss and predictions a test run sees: a semi-supervised pair's (SoftTeacher: the teacher or
    the student, as its ``semi_test_cfg.predict_on`` says), else the model itself."""
    if not hasattr(model, 'semi_test_cfg'):
        return model
    return getattr(model, (model.semi_test_cfg or {}).get('predict_on', 'teacher'))


@contextlib.contextmanager
def trained_epoch():
    """A loss that reads the training epoch from mmengine's message hub (TOOD's warm-up assigner before its
    ``initial_epoch``) sees a test run's model as trained, past every warm-up; the hub is as it was after."""
    hub = MessageHub.get_current_instance()
    if hub.get_info('epoch') is not None:
        yield
        return
    hub.update_info('epoch', 10 ** 6)
    try:
        yield
    finally:
        hub.runtime_info.pop('epoch', None)


def segments_instances(model) -> bool:
    """Whether the detector's loss needs instance masks (Mask R-CNN-style RoI heads, SOLO, CondInst, YOLACT)."""
    return bool(getattr(getattr(model, 'roi_head', None), 'with_mask', False) or hasattr(model, 'mask_head'))


def needs_annotations(model) -> str:
    """The error of a test split without the ground truth the detector's loss needs: the step to add."""
    what, step = (('gt_instances with masks', "dict(type='LoadAnnotations', with_bbox=True, with_mask=True)")
                  if segments_instances(model) else ('gt_instances', "dict(type='LoadAnnotations', with_bbox=True)"))
    return f'attacking {type(model).__name__} needs {what} in the test data: add {step} to the test pipeline'


# mmdet's TTA configs' merge of the views' boxes (``tta_model = dict(type='DetTTAModel', tta_cfg=...)``)
TTA_CFG = ConfigDict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)
# weighted boxes fusion's defaults (mmdet's tools/analysis_tools/fuse_results.py): boxes of one class overlapping by
# IoU > 0.55 are one object; its score is the views' mean, a view that misses it counting as 0
WBF_IOU = 0.55


def fused_boxes(plain, mirror):
    """``plain`` with the weighted boxes fusion of its boxes and those of ``mirror`` (the mirrored image's prediction,
    flipped back here), at most ``TTA_CFG.max_per_img`` of them by score."""
    pred, shape = mirror.pred_instances, plain.metainfo['ori_shape']
    views = (plain.pred_instances.bboxes, bbox_flip(pred.bboxes, shape, 'horizontal'))
    boxes, scores, labels = weighted_boxes_fusion(
        [b.detach().cpu().numpy() for b in views],
        [p.scores.detach().cpu().numpy() for p in (plain.pred_instances, pred)],
        [p.labels.cpu().numpy() for p in (plain.pred_instances, pred)], iou_thr=WBF_IOU, conf_type='avg')
    device, top = views[0].device, TTA_CFG.max_per_img
    merged = InstanceData()
    merged.bboxes = boxes.reshape(-1, 4)[:top].to(device)
    merged.scores = scores.reshape(-1)[:top].to(device)
    merged.labels = labels.reshape(-1)[:top].long().to(device)
    plain.pred_instances = merged
    return plain


def mirrored(sample, width):
    """A deep copy of a data sample whose ground truth is mirrored left-right in an image ``width`` pixels wide."""
    sample = copy.deepcopy(sample)
    gt = sample.gt_instances
    if hasattr(gt.bboxes, 'flip_'):  # BaseBoxes
        gt.bboxes.flip_((0, width), 'horizontal')
    else:
        gt.bboxes = bbox_flip(gt.bboxes, (0, width), 'horizontal')
    if 'masks' in gt:
        gt.masks = gt.masks.flip('horizontal')
    return sample


class DetectionLoss:
    """Untargeted detection objective: the detector's training loss against the ground-truth instances, computed as
    in eval mode (frozen BN, no dropout, no parameter change; ``loss_mode``). The test pipeline loads annotations after Resize,
    so boxes and masks are first brought to network-input coordinates. RPN / R-CNN sample RoIs at random: every
    evaluation uses the same seed, so the attack is deterministic. ``model`` and ``inputs`` serve the DAG attack.
    ``merge``: a defense that merges views (TTA, the image and its mirror): the loss is the mean of the views' losses,
    the mirror's against the mirrored ground truth. Its prediction merges the views' boxes by NMS, which has no
    useful gradient; an attack that raises both views' losses attacks what the merge is made of (docs/method.md)."""

    def __init__(self, model, sample, seed=0, merge=None):
        model = predicting_detector(model)
        if ('gt_instances' not in sample or 'bboxes' not in sample.gt_instances
                or (segments_instances(model) and 'masks' not in sample.gt_instances)):
            raise ValueError(needs_annotations(model))
        self.model, self.seed, self.merge = model, seed, merge
        self.target = copy.deepcopy(sample)  # clone() would share (and rescale) the sample's gt_instances
        gt = self.target.gt_instances
        scale = sample.metainfo.get('scale_factor', (1.0, 1.0))
        if hasattr(gt.bboxes, 'rescale_'):  # BaseBoxes
            gt.bboxes.rescale_(scale)
        else:
            gt.bboxes = gt.bboxes * gt.bboxes.new_tensor([scale[0], scale[1], scale[0], scale[1]])
        if 'masks' in gt:
            gt.masks = gt.masks.resize(sample.metainfo['img_shape'])
        head = getattr(model, 'roi_head', None)
        # HTC, SCNet, DetectoRS also train a semantic head on stuff maps (COCO-stuff) that a detection test split has
        # not: a map of its ignore label, at the network input's size, leaves that term at zero and the rest as it is.
        self.no_stuff = (getattr(head.semantic_head.criterion, 'ignore_index', 255)
                         if getattr(head, 'with_semantic', False) and 'gt_sem_seg' not in sample else None)

    def inputs(self, pixels, target=None):
        """(network inputs, [sample with the ground truth in network-input coordinates]) of 1×C×H×W pixels."""
        target = self.target if target is None else target
        inputs, samples = preprocess(self.model, pixels, copy.deepcopy(target))  # both moved to device
        if self.no_stuff is not None:
            for sample in samples:
                sample.gt_sem_seg = PixelData(sem_seg=inputs.new_full((1, *inputs.shape[-2:]), self.no_stuff))
        return inputs, samples

    def __call__(self, pixels):
        if self.merge is None:
            return self.loss(pixels)
        return (self.loss(pixels) + self.loss(pixels.flip(-1), mirrored(self.target, pixels.shape[-1]))) / 2

    def loss(self, pixels, target=None):
        inputs, samples = self.inputs(pixels, target)
        with torch.random.fork_rng(devices=[]), loss_mode(self.model), trained_epoch():  # the same RoI sampling
            torch.manual_seed(self.seed)  # (and denoising queries) at every step; global RNG untouched
            losses = self.model.loss(inputs, samples)
        # The total the detector is trained on: mmengine's own sum of its ``loss*`` entries.
        return self.model.parse_losses(losses)[0].reshape(1)


@DET_MODELS.register_module()
class DetRobustModel(RobustModel):
    """:class:`RobustModel` for any mmdet detector (two-stage, one-stage).

    ``feature``: ``'neck'`` (all FPN levels, each undone by the transform and compared at its own resolution),
    ``'neck.<i>'`` (level i) or ``'neck.<i>,<j>'`` (a selection), ``'backbone'`` / ``'backbone.<i>'``. Boxes are
    never the feature: the dense maps are. Default ``'neck.0'``, the finest FPN level (stride 4): on a development
    split of the synthetic COCO data (seed 7, not the reported val split) it recovered more AP under PGD than all
    five levels together, the backbone stages, a larger ε_v or fewer views (see docs/results.md).

    A defense that merges views (``FlipScaleTTA`` with one scale, or ``PurifiedTTA`` around one) merges the boxes
    of the image and its mirror as mmdet's ``DetTTAModel`` does (the mirror's boxes flipped back, NMS over both,
    ``TTA_CFG``), or by weighted boxes fusion (``box_merge='wbf'``, :func:`fused_boxes`); an adaptive attack raises
    both views' losses (:class:`DetectionLoss`).
    """
    merges_predictions = True  # the boxes of the image and its mirror

    def missing_annotations(self, steps):
        """The error when the test pipeline's ``steps`` (transforms) load no boxes, or no masks the loss needs."""
        loads = [step for step in steps if type(step).__name__.endswith('LoadAnnotations')]
        if not loads or (segments_instances(self.module) and not getattr(loads[0], 'with_mask', True)):
            return needs_annotations(self.module)
        return None

    default_feature = 'neck.0'
    feature_choices = ('neck', 'backbone')

    def __init__(self, module, *args, **kwargs):
        head = getattr(module, 'bbox_head', None)
        if type(head).__name__ == 'SSDHead' and not hasattr(head, 'loss_cls'):
            # mmdet 3.3.0: SSDHead's inherited predict_by_feat reads self.loss_cls (added there for V3Det), which
            # SSDHead never builds, so SSD cannot predict at all; None reads as "no custom classes", its meaning.
            head.loss_cls = None
        super().__init__(module, *args, **kwargs)
        if self.merge is not None and not self.merge.merges_boxes:
            raise ValueError(f'{self.defense!r}: a detector merges the boxes of the image and its mirror, at one scale '
                             '(a rescaled view is not built): use FlipScaleTTA(scales=(1.0,), flip=True)')
        if self.merge is not None and segments_instances(predicting_detector(module)):
            # NMS and the fusion merge boxes only (mmdet's DetTTAModel refuses masks too): masks would be lost
            raise ValueError(f'{type(module).__name__} predicts instance masks, which a merge of views cannot merge '
                             f'(boxes only): use a defense without a merge, not {self.defense!r}')

    def task_objective(self, sample):
        return DetectionLoss(self.module, sample, seed=self.seed, merge=self.attacked_merge)

    def predict_pixels(self, pixels, sample):
        """The detector's prediction; with a defense that merges views, mmdet's ``DetTTAModel`` merge of the boxes
        predicted on the image and on its mirror."""
        plain = super().predict_pixels(pixels, sample)
        if self.merge is None:
            return plain
        mirror = super().predict_pixels(pixels.flip(-1), sample)
        if self.merge.box_merge == 'wbf':
            return fused_boxes(plain, mirror)
        plain.set_metainfo(dict(flip=False, flip_direction=None))
        mirror.set_metainfo(dict(flip=True, flip_direction='horizontal'))
        return DetTTAModel(module=self.module, tta_cfg=TTA_CFG)._merge_single_sample([plain, mirror])

    def features(self, inputs, feature):
        model = predicting_detector(self.module)
        if feature.split('.')[0] == 'backbone' or not getattr(model, 'with_neck', True):
            return self.select(model.backbone(inputs), feature)
        return self.select(model.extract_feat(inputs), feature)
