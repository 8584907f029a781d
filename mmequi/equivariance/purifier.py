"""Test-time defenses: the equivariance purifier (method.md, Algorithm 1) and the random-noise baseline."""
import torch

from mmequi.attacks.base import Attack, check_generator, check_images, per_image_norm, random_tensor, valid_region
from mmequi.registry import DEFENSES

from .loss import compute_equivariance_score
from .transforms import build_transforms, reference_transforms


@DEFENSES.register_module()
class EquivariancePurifier(Attack):
    """Algorithm 1: find a bounded correction δ (‖δ‖ ≤ ε_v) that maximises the equivariance score of x + δ.

    It is the shared projected-gradient loop (:class:`mmequi.attacks.Attack`) run on the score instead of a task
    loss, with Algorithm 1's direction: the L2-normalised gradient plus N(0, 1) noise annealed to zero. Every step
    draws new transform parameters, as the reference does. ``eps`` and ``step_size`` are in pixel units of
    ``pixel_range`` (eps = 6 on 0–255 images is 6/255 = 1.5·ε for ε = 4/255); the default step 255 is the
    reference's η = 1 in [0, 1] units, so each L∞ step lands on a corner of the ε_v box.

    ``transforms``: list of configs / :class:`EquiTransform` (the identity view is implicit); None takes the first
    ``num_views`` of :func:`reference_transforms` (8 for adversarially trained models, 6 for vanilla ones).
    ``pooled=True`` is the invariance baseline (pooled features). ``norm='l2'`` is the L2 variant.
    """

    def __init__(self, transforms=None, num_views=8, eps=6.0, steps=20, step_size=255.0, norm='linf',
                 random_start=True, noise=True, pooled=False, pixel_range=(0.0, 255.0)):
        super().__init__(eps=eps, step_size=step_size, steps=steps, norm=norm, random_start=random_start,
                         pixel_range=pixel_range)
        if transforms is None:
            transforms = reference_transforms(num_views, pixel_range=pixel_range)
        self.transforms = build_transforms(transforms)
        if not self.transforms:
            raise ValueError('the purifier needs at least one transform besides the identity view')
        self.noise, self.pooled = bool(noise), bool(pooled)

    def purify(self, images, feature_fn, generator=None, valid_mask=None):
        """Purified images (detached). ``feature_fn(images)`` returns the feature map(s) of the model (e.g. logits
        at output stride 8); ``valid_mask`` (B×1×H×W) marks the pixels that may change (padding never does)."""
        return self.perturb(images, self._score_fn(feature_fn, generator), generator, valid_mask)

    def purify_unrolled(self, images, feature_fn, generator=None):
        """Algorithm 1 with every step kept in the autograd graph (second-order terms included), so an attacker can
        differentiate the purified image w.r.t. ``images`` (the "full gradient" adaptive attack). Same draws as
        :meth:`purify` for the same generator state; much more memory (T steps of K + 1 views)."""
        check_generator(generator)
        if self.eps == 0 or self.steps == 0:
            return images
        score_fn, valid, state = self._score_fn(feature_fn, generator), valid_region(None, images), {}
        with torch.enable_grad():
            delta = self.random_delta(images, generator) if self.random_start else torch.zeros_like(images)
            delta = self.constrain(images, delta, valid)
            for step in range(self.steps):
                if not delta.requires_grad:  # no random start and images without grad: start a graph at δ
                    delta = delta.clone().requires_grad_(True)
                grad, = torch.autograd.grad(score_fn(images + delta).sum(), delta, create_graph=True)
                delta = self.constrain(images, self.take_step(delta, self.direction(grad, step, state, generator)),
                                       valid)
            return (images + delta).clamp(*self.pixel_range)

    def score(self, images, feature_fn, generator=None):
        """Equivariance score of ``images`` under this defense's views -> Tensor[B] (for reports)."""
        check_generator(generator)
        with torch.no_grad():
            return self._score_fn(feature_fn, generator)(check_images(images).detach())

    def direction(self, grad, step, state, generator):
        # Algorithm 1, step 2, on the loss L = −score: g = ∇L/‖∇L‖₂ + n·(T−1−t)/T with n ~ N(0, 1), then
        # δ ← δ − η·sign(g). Ascending the score along ∇score/‖∇score‖₂ − n·(T−1−t)/T is the very same step.
        direction = grad / per_image_norm(grad, 2).clamp_min(1e-12)
        anneal = (self.steps - 1 - step) / self.steps
        if self.noise and anneal > 0:
            direction = direction - anneal * random_tensor('normal', grad.shape, grad, generator)
        return direction

    def objective(self, feature_fn, images, generator):
        """What the purifier maximises, per image -> Tensor[B]: the equivariance score of Eq. 2. Baselines with
        the same loop override this alone."""
        return compute_equivariance_score(feature_fn, images, self.transforms, generator, self.pooled)

    def _score_fn(self, feature_fn, generator):
        if not callable(feature_fn):
            raise ValueError(f'feature_fn must be callable, got {type(feature_fn).__name__}')
        return lambda images: self.objective(feature_fn, images, generator)


@DEFENSES.register_module()
class RandomNoiseDefense(EquivariancePurifier):
    """Baseline: Algorithm 1's random start only (uniform noise in the ε_v box for L∞), no optimisation.
    Same interface as the purifier; ``feature_fn`` is not used by :meth:`purify`."""

    def __init__(self, eps=6.0, norm='linf', pixel_range=(0.0, 255.0), transforms=None, num_views=8):
        super().__init__(transforms=transforms, num_views=num_views, eps=eps, norm=norm, pixel_range=pixel_range)

    def purify(self, images, feature_fn=None, generator=None, valid_mask=None):
        images = check_images(images).detach()
        check_generator(generator)
        valid = valid_region(valid_mask, images)
        if self.eps == 0:
            return images.clone()
        delta = self.constrain(images, self.random_delta(images, generator), valid)
        return self.apply_delta(images, delta, valid)

    def purify_unrolled(self, images, feature_fn=None, generator=None):
        """The same noise, differentiable w.r.t. ``images`` (identity plus a constant), for full-gradient attacks."""
        check_generator(generator)
        delta = self.constrain(images.detach(), self.random_delta(images, generator), valid_region(None, images))
        return (images + delta).clamp(*self.pixel_range)
