"""The equal-cost baseline users ask about first: the model's own test-time augmentation as a defense."""
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from mmequi.registry import DEFENSES

from .base import Defense


@DEFENSES.register_module()
class FlipScaleTTA(Defense):
    """Baseline: the prediction merged over flips and scales, as mmseg's ``SegTTAModel`` merges it (the mean of the
    softmax of every view's logits, each view brought back to the input's geometry). It changes no pixel: ``purify``
    returns its input (ε_v = 0); the robust wrapper predicts through :meth:`merge`, and an adaptive attack's task
    loss goes through the same merge. The merge is differentiable, so BPDA (the identity, exact here) + APGD is a
    white-box attack on the TTA model, and an attack on the undefended model sent through it is the transfer case.

    Args:
        scales: the views' scale factors (1.0 is the input itself); mmseg's configs use 0.5–1.75.
        flip: also each scale mirrored left-right.

    Cost: ``forward_passes`` forwards, in units of the input's area, and nothing to optimise.

    Example::

        >>> tta = FlipScaleTTA(scales=(1.0, 1.5), flip=True)  # four views: two scales, each mirrored
        >>> log_probs = tta.merge(lambda x: segmentor.inference(x, metas_for(x)), inputs)
    """
    merges_predictions = True

    def __init__(self, scales: Sequence[float] = (1.0, 1.5), flip: bool = True):
        super().__init__(None, eps=0.0, steps=0, random_start=False)
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

    def __repr__(self):
        return f'{type(self).__name__}(scales={self.scales}, flip={self.flip})'
