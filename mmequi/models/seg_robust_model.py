"""The mmseg adapter: what the attack maximises (pixel cross-entropy) and where the equivariance is measured."""
import copy
import inspect

import torch

import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.utils import resize
from mmseg.registry import MODELS as SEG_MODELS

from .robust_model import RobustModel, preprocess


def inference(model, inputs, meta, merge=None):
    """``model.inference`` (logits at the network input's size) of normalised 1×C×H×W ``inputs``; with ``merge`` (a
    defense that merges views, e.g. :class:`~mmequi.defenses.FlipScaleTTA`), the merged log-probabilities, each
    view inferred with its own size as ``img_shape`` / ``pad_shape`` (where mmseg's heads resize their logits)."""
    if merge is None:
        return model.inference(inputs, [meta])
    return merge.merge(lambda view: model.inference(
        view, [dict(meta, img_shape=tuple(view.shape[-2:]), pad_shape=tuple(view.shape[-2:]))]), inputs)


def needs_samples(head):
    """The names of what a head's ``forward`` needs besides the features (none for a dense head; the data samples of
    a query-based head; ``prev_output`` of a cascade's refining head)."""
    return [p.name for p in inspect.signature(head.forward).parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][1:]


NEEDS_ANNOTATIONS = ('attacking a segmentor needs gt_sem_seg in the test data: add '
                     "dict(type='LoadAnnotations') to the test pipeline")


class PixelCrossEntropy:
    """Untargeted segmentation objective: mean pixel CE against ``gt_sem_seg`` with ``ignore_index``, on logits
    brought to the label's resolution exactly as ``postprocess_result`` does (crop padding, un-flip, resize to
    ``ori_shape``). ``pixel_losses`` serves SegPGD. ``merge``: a defense that merges views (TTA): the logits are its
    merged log-probabilities (the attack goes through the merge)."""

    def __init__(self, model, sample, merge=None):
        if 'gt_sem_seg' not in sample:
            raise ValueError(NEEDS_ANNOTATIONS)
        self.model, self.sample, self.merge = model, sample, merge
        self.labels = sample.gt_sem_seg.data.long()  # 1×H×W at ori_shape
        self.ignore_index = getattr(model.decode_head, 'ignore_index', 255)

    def logits(self, pixels):
        model = self.model
        inputs, samples = preprocess(model, pixels, self.sample.clone())  # metainfo copied, gt untouched
        meta = samples[0].metainfo
        logits = inference(model, inputs, meta, self.merge)
        top, bottom, left, right = 0, 0, 0, 0
        if 'img_padding_size' in meta or 'padding_size' in meta:
            left, right, top, bottom = meta.get('img_padding_size', meta.get('padding_size'))
        logits = logits[..., top:logits.shape[-2] - bottom, left:logits.shape[-1] - right]
        if meta.get('flip'):
            logits = logits.flip(dims=(3,) if meta.get('flip_direction') == 'horizontal' else (2,))
        size = tuple(self.labels.shape[-2:])
        if tuple(logits.shape[-2:]) != size:
            logits = resize(logits, size=size, mode='bilinear', align_corners=model.align_corners, warning=False)
        return logits

    def logits_and_labels(self, pixels):
        """(logits B×C×H×W, labels B×H×W, valid B×H×W) at the label's resolution: what seg_losses take."""
        logits = self.logits(pixels)
        labels = self.labels.to(logits.device).expand(logits.shape[0], -1, -1)
        return logits, labels, labels != self.ignore_index

    def pixel_losses(self, pixels):
        logits, labels, valid = self.logits_and_labels(pixels)
        ce = F.cross_entropy(logits, labels, ignore_index=self.ignore_index, reduction='none')
        return ce, (logits.argmax(1) == labels) & valid, valid

    def __call__(self, pixels):
        ce, _, valid = self.pixel_losses(pixels)
        return (ce * valid).flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1)


@SEG_MODELS.register_module()
class SegRobustModel(RobustModel):
    """:class:`RobustModel` for any mmseg ``EncoderDecoder``-style segmentor.

    ``feature``: ``'logits'`` (decoder logits at output stride, before upsampling: the reference's layer),
    ``'decode'`` (the decode head's features before its classifier), ``'backbone'`` / ``'backbone.<i>'`` (all
    stages / stage i), ``'neck'`` / ``'neck.<i>'`` (``extract_feat``: backbone + neck outputs).
    """
    def missing_annotations(self, steps):
        """The error when the test pipeline's ``steps`` (transforms) load no label maps."""
        return None if any(type(step).__name__.endswith('LoadAnnotations') for step in steps) else NEEDS_ANNOTATIONS

    default_feature = 'logits'
    feature_choices = ('logits', 'decode', 'backbone', 'neck')
    merges_predictions = True

    def task_objective(self, sample):
        return PixelCrossEntropy(self.module, sample, self.attacked_merge)

    def predict_pixels(self, pixels, sample):
        """The model's prediction, merged over the defense's views when it merges predictions (TTA)."""
        if self.merge is None:
            return super().predict_pixels(pixels, sample)
        with torch.no_grad():
            inputs, samples = preprocess(self.module, pixels, copy.deepcopy(sample))
            logits = inference(self.module, inputs, samples[0].metainfo, self.merge)
            return self.module.postprocess_result(logits, samples)[0]

    def missing_feature(self, name):
        head = getattr(self.module, 'decode_head', None)
        if name in ('logits', 'decode'):
            if head is None:
                return 'this segmentor has no decode_head'
            cascade = isinstance(head, nn.ModuleList)  # CascadeEncoderDecoder: the first head sees the features
            if name == 'decode' and (cascade or not isinstance(getattr(head, 'conv_seg', None), nn.Module)):
                return ("'decode' catches the input of the decode head's conv_seg; "
                        + ('a cascade of heads has no single one' if cascade else f'{type(head).__name__} has none'))
        if name == 'backbone' and getattr(self.module, 'backbone', None) is None:
            return 'this segmentor has no backbone'
        if name == 'neck' and not callable(getattr(self.module, 'extract_feat', None)):
            return 'this segmentor has no extract_feat'
        return None

    def features(self, inputs, feature):
        model = self.module
        name = feature.split('.')[0]
        if name == 'logits':
            return self.logits(inputs)
        if name == 'decode':
            return self.classifier_input(inputs)
        if name == 'backbone':
            return self.select(model.backbone(inputs), feature)
        return self.select(model.extract_feat(inputs), feature)

    def logits(self, inputs):
        """The decoder's class scores per location (docs/method.md, "Features per model structure"): the head's
        logits at output stride (``_forward``); for a query-based head (MaskFormer, Mask2Former, SAN: its forward
        needs the data samples) the per-class map its ``predict`` makes of the queries' classes and masks, at the
        input's size (the segmentor's ``encode_decode``); for a cascade whose refinement is not dense (PointRend's
        point head works on sampled points) the coarse head's logits; for a head with an auxiliary output, its
        segmentation logits."""
        model = self.module
        head = model.decode_head
        if isinstance(head, nn.ModuleList):
            if not all(needs_samples(stage) == ['prev_output'] for stage in head[1:]):
                return head[0].forward(model.extract_feat(inputs))
        elif needs_samples(head):  # the segmentor's own encode_decode: extract_feat + head.predict, or SAN's
            size = tuple(inputs.shape[-2:])  # CLIP image and text encoders + head.predict
            metas = [dict(img_shape=size, pad_shape=size, ori_shape=size)] * inputs.shape[0]
            return model.encode_decode(inputs, metas)
        out = model._forward(inputs)
        # A head with an auxiliary output (EncHead's SE-loss vector: EncNet, FastFCN) returns a tuple; its predict
        # takes the first element, the segmentation logits, and so does this.
        return out[0] if isinstance(out, (tuple, list)) else out

    def classifier_input(self, inputs):
        """The decode head's last features: caught on their way into ``conv_seg`` (heads that build them inside
        ``forward``, like DeepLabV3+, have no separate method for it)."""
        caught = []
        handle = self.module.decode_head.conv_seg.register_forward_pre_hook(lambda _, args: caught.append(args[0]))
        try:
            self.module._forward(inputs)
        finally:
            handle.remove()
        return caught[-1]
