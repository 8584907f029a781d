"""Projected gradient ascent on a bounded perturbation δ of pixel images: the one loop attacks and defenses share.

An attack ascends a task loss (``mmequi.attacks``), a defense ascends a self-supervised objective such as the
equivariance score (``mmequi.defenses``); both are thin roles over :class:`ProjectedGradient`.

Units: ``eps`` and ``step_size`` are in the pixel units of ``pixel_range``. On 0–255 images eps = 4 is the usual
ε = 4/255 (docs/method.md, "Pixel space in OpenMMLab"). Images are un-normalised B×C×H×W float pixel tensors; the
normalisation happens inside the loss.
"""
import math
import numbers
from typing import Callable, Optional, Tuple

import torch

NORMS = ('linf', 'l2')
_TINY = 1e-12

# ``loss(images, step) -> Tensor[B]``: one value per image, maximised by the loop.
Loss = Callable[[torch.Tensor, int], torch.Tensor]


def check_images(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f'images must be a floating-point B×C×H×W tensor, got '
                         f'{getattr(images, "dtype", type(images))} of shape {getattr(images, "shape", "-")}')
    return images


def check_generator(generator: Optional[torch.Generator]) -> Optional[torch.Generator]:
    """Random numbers are drawn on the CPU and then moved, so CPU and CUDA runs with one seed draw the same."""
    if generator is not None and (not isinstance(generator, torch.Generator) or generator.device.type != 'cpu'):
        raise ValueError(f'generator must be None or a CPU torch.Generator, got {generator!r}')
    return generator


def valid_region(valid_mask: Optional[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """B×1×H×W {0,1} float mask of the pixels that may be perturbed (the padding may not); None = all."""
    batch, _, height, width = images.shape
    if valid_mask is None:
        return images.new_ones((batch, 1, height, width))
    if (not isinstance(valid_mask, torch.Tensor) or valid_mask.dim() != 4 or valid_mask.shape[0] not in (1, batch)
            or valid_mask.shape[1] != 1 or tuple(valid_mask.shape[-2:]) != (height, width)):
        raise ValueError(f'valid_mask must be None or a B×1×H×W tensor matching images {tuple(images.shape)}, got '
                         f'{getattr(valid_mask, "shape", type(valid_mask))}')
    valid = (valid_mask.to(device=images.device, dtype=images.dtype) > 0.5).to(images.dtype)
    return valid.expand(batch, 1, height, width)


def per_image_norm(x: torch.Tensor, p: float) -> torch.Tensor:
    """‖x_b‖_p for every image b, shaped B×1×1×1 for broadcasting."""
    return x.flatten(1).norm(p=p, dim=1).view(-1, 1, 1, 1)


def random_tensor(kind: str, shape, like: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    """'uniform' U(0, 1) or 'normal' N(0, 1) numbers drawn on the CPU from ``generator``, then put on ``like``."""
    draw = torch.rand if kind == 'uniform' else torch.randn
    return draw(tuple(shape), generator=generator).to(like)


def per_image_losses(losses, images: torch.Tensor) -> torch.Tensor:
    """Check that a loss gave one value per image (images stay independent when the batch is summed)."""
    if not isinstance(losses, torch.Tensor) or tuple(losses.shape) != (images.shape[0],):
        raise ValueError(f'the objective must return one loss per image, shape ({images.shape[0]},), got '
                         f'{getattr(losses, "shape", type(losses))}')
    return losses


class ProjectedGradient:
    """``steps`` steps of projected gradient ascent within the ε-ball of ``norm`` from an optional random start.

    The ball is the 'linf' box or the 'l2' ball, per image; pixels stay in ``pixel_range`` and pixels outside
    ``valid_mask`` are never changed. Subclasses say how the gradient becomes a step direction
    (:meth:`direction`); what is maximised is the ``loss`` passed to :meth:`run`.
    """

    def __init__(self, eps: float, step_size: float, steps: int, norm: str = 'linf', random_start: bool = True,
                 pixel_range: Tuple[float, float] = (0.0, 255.0)):
        if not (isinstance(eps, numbers.Real) and math.isfinite(eps) and eps >= 0):
            raise ValueError(f'eps must be a finite number >= 0 (pixel units), got {eps!r}')
        if not (isinstance(step_size, numbers.Real) and math.isfinite(step_size) and step_size > 0):
            raise ValueError(f'step_size must be a finite number > 0 (pixel units), got {step_size!r}')
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
            raise ValueError(f'steps must be an integer >= 0, got {steps!r}')
        if not isinstance(norm, str) or norm.lower() not in NORMS:
            raise ValueError(f'unknown norm {norm!r}; expected one of {NORMS}')
        if len(pixel_range) != 2 or not pixel_range[0] < pixel_range[1]:
            raise ValueError(f'pixel_range must be (low, high) with low < high, got {pixel_range!r}')
        if 0 < eps < 1 and pixel_range[1] - pixel_range[0] > 2:
            # below one grey level of an 8-bit image: 0.03 is almost surely 8/255 written as a fraction of 1
            raise ValueError(f'eps={eps!r} is in pixel units of the {tuple(pixel_range)} images, i.e. {eps!r}/255 '
                             f'of the range (below one grey level); for {round(eps * 255)}/255 write '
                             f'eps={round(eps * 255)}')
        self.eps, self.step_size, self.steps = float(eps), float(step_size), int(steps)
        self.norm = norm.lower()
        self.random_start = bool(random_start)
        self.pixel_range = (float(pixel_range[0]), float(pixel_range[1]))

    def run(self, images: torch.Tensor, loss: Optional[Loss], generator: Optional[torch.Generator] = None,
            valid_mask: Optional[torch.Tensor] = None, keep_graph: bool = False) -> torch.Tensor:
        """Images + δ maximising ``loss(images + δ, step) -> Tensor[B]``.

        ``loss=None`` stops after the random start (the random-noise baseline). A ``loss`` with a method
        ``gradient(images, step) -> ∂loss/∂images or None`` computes its own gradient (unless ``keep_graph``). ``keep_graph=True`` keeps every step
        in the autograd graph (second-order terms included), so the result can be differentiated w.r.t. ``images``;
        otherwise the result is detached and the model is only differentiated w.r.t. δ.
        """
        images = check_images(images) if keep_graph else check_images(images).detach()
        check_generator(generator)
        valid = valid_region(valid_mask, images)
        if self.eps == 0 or (loss is not None and self.steps == 0):
            return images if keep_graph else images.clone()
        state = {}  # per-call memory of a subclass's direction (MIM's momentum)
        with torch.enable_grad():  # callers (mmengine's TestLoop) run under torch.no_grad()
            delta = self.random_delta(images, generator) if self.random_start else torch.zeros_like(images)
            delta = self.constrain(images, delta, valid)
            for step in range(self.steps if loss is not None else 0):
                if not keep_graph:
                    delta.requires_grad_(True)
                elif not delta.requires_grad:  # no random start and images without grad: start a graph at δ
                    delta = delta.clone().requires_grad_(True)
                # A loss may differentiate itself (e.g. view by view): ∂/∂(x + δ) = ∂/∂δ. None: use autograd.
                own = getattr(loss, 'gradient', None)
                grad = own(images + delta.detach(), step) if callable(own) and not keep_graph else None
                if grad is None:
                    adv = images + delta
                    grad = self.gradient(per_image_losses(loss(adv, step), adv).sum(), delta, keep_graph)
                direction = self.direction(grad * valid, step, state, generator)
                delta = self.constrain(images, self.take_step(delta if keep_graph else delta.detach(), direction),
                                       valid)
            if keep_graph:
                return torch.where(valid > 0, (images + delta).clamp(*self.pixel_range), images)
        return self.apply_delta(images, delta, valid)

    @staticmethod
    def gradient(loss: torch.Tensor, delta: torch.Tensor, keep_graph: bool = False) -> torch.Tensor:
        """∂loss/∂δ through autograd.grad only: no parameter ever gets a ``.grad``."""
        grad = None
        if isinstance(loss, torch.Tensor) and loss.requires_grad:
            grad, = torch.autograd.grad(loss, delta, allow_unused=True, create_graph=keep_graph)
        if grad is None:
            raise ValueError('the objective must be differentiable w.r.t. the images (is it computed under '
                             'torch.no_grad() or on detached tensors?)')
        return grad

    def direction(self, grad: torch.Tensor, step: int, state: dict,
                  generator: Optional[torch.Generator]) -> torch.Tensor:
        """Ascent direction from the gradient; ``state`` is a dict that lives for one :meth:`run` call."""
        return grad

    def take_step(self, delta: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        """L∞: a sign step; L2: a step along the per-image L2-normalised direction."""
        if self.norm == 'linf':
            return delta + self.step_size * direction.sign()
        return delta + self.step_size * direction / per_image_norm(direction, 2).clamp_min(_TINY)

    def random_delta(self, images: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        """Random start: U(−ε, ε) per pixel for L∞; a random direction at a U(0, ε) radius for L2."""
        if self.norm == 'linf':
            return (2 * random_tensor('uniform', images.shape, images, generator) - 1) * self.eps
        direction = random_tensor('normal', images.shape, images, generator)
        radius = random_tensor('uniform', (images.shape[0], 1, 1, 1), images, generator) * self.eps
        return direction / per_image_norm(direction, 2).clamp_min(_TINY) * radius

    def project(self, delta: torch.Tensor, eps: Optional[float] = None) -> torch.Tensor:
        """Onto the ``eps``-ball of the norm (per image); None: the ε-ball."""
        eps = self.eps if eps is None else eps
        if self.norm == 'linf':
            return delta.clamp(-eps, eps)
        return delta * (eps / per_image_norm(delta, 2).clamp_min(_TINY)).clamp(max=1.0)

    def constrain(self, images: torch.Tensor, delta: torch.Tensor, valid: torch.Tensor,
                  eps: Optional[float] = None) -> torch.Tensor:
        """Project δ onto the ``eps``-ball (None: ε), keep images + δ in the pixel range, zero δ outside the valid
        region."""
        delta = self.project(delta, eps)
        delta = (images + delta).clamp(*self.pixel_range) - images
        return delta * valid

    def apply_delta(self, images: torch.Tensor, delta: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """images + δ in range on valid pixels, the original pixels (exactly) elsewhere; detached."""
        return torch.where(valid > 0, (images + delta).clamp(*self.pixel_range), images).detach()

    def __repr__(self):
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items() if not k.startswith('_'))
        return f'{type(self).__name__}({args})'
