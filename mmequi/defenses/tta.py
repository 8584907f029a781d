"""The equal-cost baseline users ask about first: the model's own test-time augmentation as a defense."""
from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F

from mmequi.registry import DEFENSES, build

from .base import Defense


@DEFENSES.register_module()
class FlipScaleTTA(Defense):
    """Baseline: the prediction merged over flips and scales, as mmseg's ``SegTTAModel`` merges it (the mean of the
    softmax of every view's logits, each view brought back to the input's geometry). It changes no pixel: ``purify``
    returns its input (ε_v = 0); the robust wrapper predicts through :meth:`merge`, and an adaptive attack's task
    loss goes through the same merge. The merge is differentiable, so BPDA (the identity, exact here) + APGD is a
    white-box attack on the TTA model, and an attack on the undefended model sent through it is the transfer case.
    A detector merges the boxes of the image and its mirror instead (:class:`~mmequi.models.DetRobustModel`;
    :attr:`merges_boxes`), by ``box_merge``.

    Args:
        scales: the views' scale factors (1.0 is the input itself); mmseg's configs use 0.5–1.75.
        flip: also each scale mirrored left-right.
        box_merge: how a detector merges the two views' boxes: ``'nms'`` (mmdet's ``DetTTAModel`` rule: NMS over
            both) or ``'wbf'`` (mmdet's ``weighted_boxes_fusion``: matched boxes averaged, a box only one view
            predicts at half its score, the detector's counterpart of the mean softmax). A segmentor ignores it.

    Cost: ``forward_passes`` forwards, in units of the input's area, and nothing to optimise.

    Example::

        >>> tta = FlipScaleTTA(scales=(1.0, 1.5), flip=True)  # four views: two scales, each mirrored
        >>> log_probs = tta.merge(lambda x: segmentor.inference(x, metas_for(x)), inputs)
    """
    merges_predictions = True

    box_merges = ('nms', 'wbf')

    def __init__(self, scales: Sequence[float] = (1.0, 1.5), flip: bool = True, box_merge: str = 'nms'):
        super().__init__(None, eps=0.0, steps=0, random_start=False)
        if box_merge not in self.box_merges:
            raise ValueError(f'box_merge must be one of {self.box_merges}, got {box_merge!r}')
        self.box_merge = box_merge
        if (isinstance(scales, (str, bytes)) or not hasattr(scales, '__len__') or not len(scales)
                or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and 0 < s <= 4 for s in scales)):
            raise ValueError(f'scales must be a non-empty sequence of scale factors in (0, 4], got {scales!r}')
        self.scales, self.flip = tuple(float(s) for s in scales), bool(flip)
        self.mirrors = (False, True) if self.flip else (False,)  # each scale as it is, and mirrored with flip

    @property
    def forward_passes(self) -> float:
        """Forwards per prediction, in units of the input's area."""
        return sum(s * s for s in self.scales) * len(self.mirrors)

    def merge(self, infer: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """log of the mean softmax over the views: ``infer(view) -> B×C×h×w`` logits at the view's size, for
        normalised B×C×H×W ``inputs``; the result is B×C×H×W (its argmax is the TTA prediction, and cross-entropy on
        it is the negative log of the merged probability)."""
        size, total = inputs.shape[-2:], 0
        for scale in self.scales:
            view = inputs if scale == 1 else F.interpolate(
                inputs, size=[max(1, round(n * scale)) for n in size], mode='bilinear', align_corners=False)
            for mirrored in self.mirrors:
                logits = infer(view.flip(-1) if mirrored else view)
                logits = logits.flip(-1) if mirrored else logits  # back to the view's own orientation
                if logits.shape[-2:] != size:
                    logits = F.interpolate(logits, size=list(size), mode='bilinear', align_corners=False)
                total = total + logits.softmax(1)
        return (total / (len(self.scales) * len(self.mirrors))).clamp_min(1e-12).log()

    @property
    def merges_boxes(self) -> bool:
        """Whether a detector can merge these views (mmdet's ``DetTTAModel`` rule on the boxes of the image and its
        mirror): one scale, mirrored (a rescaled view's boxes would need a scale factor of their own; not built)."""
        return self.scales == (1.0,) and self.flip

    def __repr__(self):
        merge = '' if self.box_merge == 'nms' else f', box_merge={self.box_merge!r}'
        return f'{type(self).__name__}(scales={self.scales}, flip={self.flip}{merge})'


@DEFENSES.register_module()
class PurifiedTTA(Defense):
    """A purifier, then the model's own test-time augmentation: the input is purified by ``purifier`` (its bounds,
    steps and draws), and the prediction on the purified input is merged over ``tta``'s views. The merge gives back
    clean accuracy that the purifier's correction costs (docs/method.md, "Purification, then the model's own
    merge"); an adaptive attack goes through both (BPDA over the purifier, the exact gradient through the merge).

    Args:
        purifier: config or instance of a pixel-changing defense (e.g. ``dict(type='EquivariancePurifier', ...)``).
        tta: config or instance of :class:`FlipScaleTTA` (None: its defaults, two scales each mirrored).

    Cost: the purifier's passes, plus ``forward_passes`` forwards for the merged prediction.

    Example::

        >>> defense = PurifiedTTA(purifier=dict(type='EquivariancePurifier', transforms=[dict(type='HFlip')], steps=5),
        ...                       tta=dict(type='FlipScaleTTA', scales=(1.0, 1.5)))
    """
    merges_predictions = True

    def __init__(self, purifier: Union[dict, Defense], tta: Union[dict, FlipScaleTTA, None] = None):
        tta = FlipScaleTTA() if tta is None else tta
        purifier, tta = (part if isinstance(part, Defense) else build(DEFENSES, part, name)
                         for part, name in ((purifier, 'purifier'), (tta, 'tta')))
        if getattr(purifier, 'merges_predictions', False):
            raise ValueError(f'purifier must change pixels, not merge predictions: got {purifier!r}')
        if not isinstance(tta, FlipScaleTTA):
            raise ValueError(f'tta must be a FlipScaleTTA, got {tta!r}')
        super().__init__(None, eps=purifier.eps, steps=purifier.steps, step_size=purifier.step_size,
                         norm=purifier.norm, random_start=purifier.random_start, pixel_range=purifier.pixel_range)
        self.purifier, self.tta = purifier, tta
        # what adaptive attacks and the score read off a defense: the purifier's objective, gate and feature
        self.objective = purifier.objective
        self.gate, self.feature = getattr(purifier, 'gate', None), purifier.feature

    @property
    def forward_passes(self) -> float:
        return self.tta.forward_passes

    def merge(self, infer, inputs):
        return self.tta.merge(infer, inputs)

    @property
    def merges_boxes(self) -> bool:
        return self.tta.merges_boxes

    @property
    def box_merge(self) -> str:
        return self.tta.box_merge

    def purify(self, images, feature_fn=None, generator=None, valid_mask=None):
        return self.purifier.purify(images, feature_fn, generator, valid_mask)

    def purify_unrolled(self, images, feature_fn=None, generator=None):
        return self.purifier.purify_unrolled(images, feature_fn, generator)

    def __repr__(self):
        return f'{type(self).__name__}(purifier={self.purifier!r}, tta={self.tta!r})'
