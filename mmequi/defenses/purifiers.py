"""The equivariance purifier (docs/method.md, Algorithm 1) and two baselines with the same loop and bounds."""
from typing import Optional, Sequence

from mmequi.equivariance import EquivarianceObjective, EquivarianceScorer, InvarianceObjective
from mmequi.registry import DEFENSES

from .base import Defense


class ViewsDefense(Defense):
    """A defense whose objective compares K transformed views (``objective_type(transforms, num_views)``)."""
    objective_type = None

    def __init__(self, transforms: Optional[Sequence] = None, num_views: int = 8, eps: float = 6.0, steps: int = 20,
                 step_size: float = 255.0, norm: str = 'linf', random_start: bool = True, noise: bool = True,
                 pixel_range=(0.0, 255.0), views_per_step: Optional[int] = None,
                 max_view_area: Optional[float] = None, batch_views: Optional[bool] = None, **kwargs):
        super().__init__(self.objective_type(transforms, num_views, pixel_range, views_per_step, max_view_area,
                                             batch_views),
                         eps=eps, steps=steps, step_size=step_size, norm=norm, random_start=random_start, noise=noise,
                         pixel_range=pixel_range, **kwargs)


@DEFENSES.register_module()
class EquivariancePurifier(ViewsDefense):
    """Algorithm 1: the bounded correction that maximises the equivariance score of x + δ over K views.

    Every step draws new view parameters, as the reference does. Defaults are the reference's (docs/method.md):
    K = 8, T = 20, ε_v = 6/255, η = 1 on [0, 1] images, annealed noise, random start.

    Args:
        transforms: view configs / :class:`~mmequi.equivariance.EquiTransform` (identity implicit); None takes the
            first ``num_views`` reference views.
        num_views: K when ``transforms`` is None.
        views_per_step, max_view_area: approximations, batch_views: exact; see
            :class:`~mmequi.equivariance.EquivarianceObjective`.
        eps, steps, step_size, norm, random_start, noise, pixel_range, grad_per_view, autocast: as :class:`Defense`.

    Shape: ``purify(images B×C×H×W, feature_fn, generator, valid_mask B×1×H×W) -> B×C×H×W``.

    Example::

        >>> purifier = EquivariancePurifier(num_views=8, eps=6, steps=20)
        >>> purified = purifier.purify(pixels, feature_fn, torch.Generator().manual_seed(0))
    """
    objective_type = EquivarianceObjective

    def __init__(self, *args, gate: Optional[float] = None, **kwargs):
        super().__init__(*args, **kwargs)
        if gate is not None and not (isinstance(gate, (int, float)) and -1 <= gate <= 1):
            raise ValueError(f'gate must be None or an equivariance score in [-1, 1] (the mean cosine), got {gate!r}')
        self.gate = None if gate is None else float(gate)
        self._scorer = EquivarianceScorer(self.objective.transforms)  # the gate's score

    def purify(self, images, feature_fn=None, generator=None, valid_mask=None):
        """Algorithm 1; with ``gate``, only the images whose equivariance score (the mean cosine over the defense's
        views, :class:`~mmequi.equivariance.EquivarianceScorer`) is below ``gate`` are purified, the others come
        back unchanged. The gate makes the defense's work depend on the input: evaluate it with an attack that keeps
        the score above the gate (docs/method.md, "Attacks for evaluation")."""
        if self.gate is None:
            return super().purify(images, feature_fn, generator, valid_mask)
        out = images.detach().clone()
        todo = (self._scorer(images, feature_fn, generator) < self.gate).nonzero().flatten().tolist()
        if todo:
            mask = valid_mask[todo] if valid_mask is not None and valid_mask.shape[0] == images.shape[0] else valid_mask
            out[todo] = super().purify(images[todo], feature_fn, generator, mask)
        return out


@DEFENSES.register_module()
class InvariancePurifier(ViewsDefense):
    """Baseline: the equivariance purifier's views, loop and defaults on the pooled (invariance) score: no spatial
    constraint. Arguments as :class:`EquivariancePurifier`."""
    objective_type = InvarianceObjective


@DEFENSES.register_module()
class RandomNoiseDefense(Defense):
    """Baseline: Algorithm 1's random start only (uniform noise in the ε_v box for L∞), no optimisation.
    ``purify(images, feature_fn=None, generator, valid_mask)``: ``feature_fn`` is not used."""

    def __init__(self, eps: float = 6.0, norm: str = 'linf', pixel_range=(0.0, 255.0)):
        super().__init__(None, eps=eps, norm=norm, pixel_range=pixel_range)
