"""Projected gradient ascent on a bounded perturbation: the loop every attack (and the purifier) shares.

Units: ``eps`` and ``step_size`` are in the pixel units of ``pixel_range``. On 0–255 images eps = 4 is the usual
ε = 4/255 (method.md, "Pixel space in OpenMMLab"). Images are un-normalised B×C×H×W pixel tensors; the
normalisation happens inside ``objective``.
"""
import math
import numbers

import torch

NORMS = ('linf', 'l2')
_TINY = 1e-12


def check_images(images):
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f'images must be a floating-point B×C×H×W tensor, got '
                         f'{getattr(images, "dtype", type(images))} of shape {getattr(images, "shape", "-")}')
    return images


def check_generator(generator):
    """Random numbers are drawn on the CPU and then moved, so CPU and CUDA runs with one seed draw the same."""
    if generator is not None and (not isinstance(generator, torch.Generator) or generator.device.type != 'cpu'):
        raise ValueError(f'generator must be None or a CPU torch.Generator, got {generator!r}')
    return generator


def valid_region(valid_mask, images):
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


def per_image_norm(x, p):
    """‖x_b‖_p for every image b, shaped B×1×1×1 for broadcasting."""
    return x.flatten(1).norm(p=p, dim=1).view(-1, 1, 1, 1)


def random_tensor(kind, shape, like, generator):
    """'uniform' U(0, 1) or 'normal' N(0, 1) numbers drawn on the CPU from ``generator``, then put on ``like``."""
    draw = torch.rand if kind == 'uniform' else torch.randn
    return draw(tuple(shape), generator=generator).to(like)


class Attack:
    """Base class: ``steps`` steps of projected gradient ascent on ``objective`` from an optional random start.

    ``perturb(images, objective)`` maximises ``objective(images) -> Tensor[B]`` (per-image loss, built by the task
    adapter) within the ε-ball of ``norm`` ('linf' box or 'l2' ball, per image), keeps pixels in ``pixel_range`` and
    leaves pixels outside ``valid_mask`` untouched. Subclasses override :meth:`loss` (what is maximised at a step)
    and :meth:`direction` (how the gradient becomes a step direction). Plain PGD uses both defaults.
    """
    needs_defense = False  # adaptive attacks attack the defended model: without a defense they are undefined

    def __init__(self, eps=4.0, step_size=1.0, steps=50, norm='linf', random_start=True, pixel_range=(0.0, 255.0)):
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
        self.eps, self.step_size, self.steps = float(eps), float(step_size), int(steps)
        self.norm = norm.lower()
        self.random_start = bool(random_start)
        self.pixel_range = (float(pixel_range[0]), float(pixel_range[1]))

    def perturb(self, images, objective, generator=None, valid_mask=None):
        """Adversarial (detached) images maximising ``objective``; the model is only differentiated w.r.t. δ."""
        images = check_images(images).detach()
        check_generator(generator)
        valid = valid_region(valid_mask, images)
        if self.eps == 0 or self.steps == 0:
            return images.clone()
        state = {}  # per-call memory of a subclass's direction (MIM's momentum)
        with torch.enable_grad():  # callers (mmengine's TestLoop) run under torch.no_grad()
            delta = self.random_delta(images, generator) if self.random_start else torch.zeros_like(images)
            delta = self.constrain(images, delta, valid)
            for step in range(self.steps):
                delta.requires_grad_(True)
                grad = self.gradient(self.loss(objective, images + delta, step), delta)
                direction = self.direction(grad * valid, step, state, generator)
                delta = self.constrain(images, self.take_step(delta.detach(), direction), valid)
        return self.apply_delta(images, delta, valid)

    def loss(self, objective, adv, step):
        """Scalar maximised at ``step``: the per-image objective summed over the batch (images stay independent)."""
        losses = objective(adv)
        if not isinstance(losses, torch.Tensor) or tuple(losses.shape) != (adv.shape[0],):
            raise ValueError(f'objective(images) must return one loss per image, shape ({adv.shape[0]},), got '
                             f'{getattr(losses, "shape", type(losses))}')
        return losses.sum()

    @staticmethod
    def gradient(loss, delta):
        """∂loss/∂δ through autograd.grad only: no parameter ever gets a ``.grad``."""
        grad = None
        if isinstance(loss, torch.Tensor) and loss.requires_grad:
            grad, = torch.autograd.grad(loss, delta, allow_unused=True)
        if grad is None:
            raise ValueError('the objective must be differentiable w.r.t. the images (is it computed under '
                             'torch.no_grad() or on detached tensors?)')
        return grad

    def direction(self, grad, step, state, generator):
        """Ascent direction from the gradient; ``state`` is a dict that lives for one :meth:`perturb` call."""
        return grad

    def take_step(self, delta, direction):
        """L∞: a sign step; L2: a step along the per-image L2-normalised direction."""
        if self.norm == 'linf':
            return delta + self.step_size * direction.sign()
        return delta + self.step_size * direction / per_image_norm(direction, 2).clamp_min(_TINY)

    def random_delta(self, images, generator):
        """Random start: U(−ε, ε) per pixel for L∞; a random direction at a U(0, ε) radius for L2."""
        if self.norm == 'linf':
            return (2 * random_tensor('uniform', images.shape, images, generator) - 1) * self.eps
        direction = random_tensor('normal', images.shape, images, generator)
        radius = random_tensor('uniform', (images.shape[0], 1, 1, 1), images, generator) * self.eps
        return direction / per_image_norm(direction, 2).clamp_min(_TINY) * radius

    def project(self, delta):
        """Onto the ε-ball of the norm (per image)."""
        if self.norm == 'linf':
            return delta.clamp(-self.eps, self.eps)
        return delta * (self.eps / per_image_norm(delta, 2).clamp_min(_TINY)).clamp(max=1.0)

    def constrain(self, images, delta, valid):
        """Project δ, keep images + δ in the pixel range, and zero δ outside the valid region."""
        delta = self.project(delta)
        delta = (images + delta).clamp(*self.pixel_range) - images
        return delta * valid

    def apply_delta(self, images, delta, valid):
        """images + δ in range on valid pixels, the original pixels (exactly) elsewhere."""
        return torch.where(valid > 0, (images + delta).clamp(*self.pixel_range), images).detach()

    def __repr__(self):
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items())
        return f'{type(self).__name__}({args})'
