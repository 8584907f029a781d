"""The defense role: purify an input by maximising an objective within a small ε_v-ball, over the shared loop."""
import contextlib
from typing import Callable, Optional

import torch

from mmequi.loop import ProjectedGradient, check_generator, per_image_norm, random_tensor

# ``objective(images, feature_fn, generator) -> Tensor[B]``, higher is better (mmequi.equivariance.objectives).
DefenseObjective = Callable[[torch.Tensor, Callable, Optional[torch.Generator]], torch.Tensor]


class Defense(ProjectedGradient):
    """Algorithm 1's loop (docs/method.md) on any objective: find a bounded correction δ (‖δ‖ ≤ ε_v) that maximises
    ``objective(x + δ)``, with Algorithm 1's direction (the L2-normalised gradient plus N(0, 1) noise annealed to
    zero), from a random start. ``objective=None`` keeps only the random start (the random-noise baseline).

    Args:
        objective: callable ``(images, feature_fn, generator) -> Tensor[B]`` or None.
        eps: ε_v in pixel units of ``pixel_range`` (6 on 0–255 images is 6/255 = 1.5·ε for ε = 4/255).
        steps: T.
        step_size: η in pixel units; the default 255 is the reference's η = 1 on [0, 1] images, so every L∞ step
            lands on a corner of the ε_v box.
        norm: 'linf' or 'l2' (the L2 variant).
        random_start, noise: Algorithm 1's random start and annealed gradient noise.
        pixel_range: (low, high) of valid pixel values.
        grad_per_view: when the objective offers ``gradient`` (the view-based ones do), differentiate it view by
            view: peak memory of one view's graph instead of K + 1 (exact; K + 1 extra forwards). None (default):
            on CUDA, and on CPU for images over ``PER_VIEW_PIXELS`` pixels; smaller images on CPU keep every graph,
            which is faster there (measured: docs/benchmark/README.md) and fits in memory.
        autocast: None, 'bf16' or 'fp16' (CUDA only): run the objective's forwards under ``torch.autocast``.

    A defense may also say which model ``feature`` it must be run on (e.g. the one a rotation head was trained on);
    None lets the robust wrapper choose.
    """
    feature: Optional[str] = None
    AUTOCAST = {'bf16': torch.bfloat16, 'fp16': torch.float16}
    PER_VIEW_PIXELS = 2 ** 20

    def __init__(self, objective: Optional[DefenseObjective] = None, eps: float = 6.0, steps: int = 20,
                 step_size: float = 255.0, norm: str = 'linf', random_start: bool = True, noise: bool = True,
                 pixel_range=(0.0, 255.0), grad_per_view: Optional[bool] = None, autocast: Optional[str] = None):
        super().__init__(eps, step_size, steps, norm, random_start, pixel_range)
        if objective is not None and not callable(objective):
            raise ValueError(f'objective must be callable or None, got {type(objective).__name__}')
        if autocast is not None and autocast not in self.AUTOCAST:
            raise ValueError(f'autocast must be None or one of {sorted(self.AUTOCAST)}, got {autocast!r}')
        self.objective, self.noise = objective, bool(noise)
        if grad_per_view not in (None, True, False):
            raise ValueError(f'grad_per_view must be None (auto), True or False, got {grad_per_view!r}')
        self.grad_per_view, self.autocast = grad_per_view, autocast

    def purify(self, images: torch.Tensor, feature_fn: Optional[Callable] = None,
               generator: Optional[torch.Generator] = None, valid_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Purified B×C×H×W images (detached). ``feature_fn(images)`` returns the feature map(s) of the model (e.g.
        logits at output stride 8); ``valid_mask`` (B×1×H×W) marks the pixels that may change (padding never does)."""
        return self.run(images, self.loss(feature_fn, generator), generator, valid_mask)

    def purify_unrolled(self, images: torch.Tensor, feature_fn: Optional[Callable] = None,
                        generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """:meth:`purify` with every step kept in the autograd graph (second-order terms included), so an attacker
        can differentiate the purified image w.r.t. ``images`` (the "full gradient" adaptive attack). Same draws as
        :meth:`purify` for the same generator state; much more memory (T steps of K + 1 views)."""
        return self.run(images, self.loss(feature_fn, generator), generator, keep_graph=True)

    def loss(self, feature_fn, generator):
        """What the loop ascends: ``objective(x + δ)`` per image (None: no optimisation)."""
        if self.objective is None:
            return None
        if not callable(feature_fn):
            raise ValueError(f'feature_fn must be callable, got {type(feature_fn).__name__}')
        check_generator(generator)
        return ObjectiveAscent(self, feature_fn, generator)

    def direction(self, grad, step, state, generator):
        # Algorithm 1, step 2, on the loss L = −objective: g = ∇L/‖∇L‖₂ + n·(T−1−t)/T with n ~ N(0, 1), then
        # δ ← δ − η·sign(g). Ascending along ∇objective/‖∇objective‖₂ − n·(T−1−t)/T is the very same step.
        direction = grad / per_image_norm(grad, 2).clamp_min(1e-12)
        anneal = (self.steps - 1 - step) / self.steps
        if self.noise and anneal > 0:
            direction = direction - anneal * random_tensor('normal', grad.shape, grad, generator)
        return direction


class ObjectiveAscent:
    """The loop's loss for one purification: ``objective(images, feature_fn, generator)``, under the defense's
    autocast, with the objective's own view-by-view ``gradient`` when the defense asks for it."""

    def __init__(self, defense: Defense, feature_fn: Callable, generator: Optional[torch.Generator]):
        self.defense, self.feature_fn, self.generator = defense, feature_fn, generator

    def per_view(self, images):
        if not callable(getattr(self.defense.objective, 'gradient', None)):
            return False
        if self.defense.grad_per_view is None:
            return images.is_cuda or images.shape[-2] * images.shape[-1] > Defense.PER_VIEW_PIXELS
        return self.defense.grad_per_view

    def gradient(self, images, step):
        """∂objective/∂images, view by view (see ``grad_per_view``); None: let the loop use autograd."""
        if not self.per_view(images):
            return None
        with self.precision(images):
            return self.defense.objective.gradient(images, self.feature_fn, self.generator).float()

    def precision(self, images):
        if self.defense.autocast is None:
            return contextlib.nullcontext()
        if self.defense.autocast == 'fp16' and images.device.type != 'cuda':
            raise ValueError(f"autocast='fp16' needs a CUDA device, the images are on {images.device.type}: use "
                             "autocast='bf16' or None")
        return torch.autocast(images.device.type, dtype=Defense.AUTOCAST[self.defense.autocast])

    def __call__(self, images, step):
        with self.precision(images):
            return self.defense.objective(images, self.feature_fn, self.generator).float()
