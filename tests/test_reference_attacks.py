"""Our PGD (L∞, L2), MIM and APGD (L∞, L2) against the published implementations in torchattacks 3.5.1.

Differential tests: the same tiny float64 model, the same start and the same settings on both sides, and every
iterate the model sees must agree to 1e-6 on [0, 1] images, not only the result. Ours works on 0–255 pixels with a
per-image objective, so it runs on images·255 and maximises the per-image cross-entropy of the model at images/255;
torchattacks maximises the mean cross-entropy (PGD, MIM; 1/B, which sign and per-image normalised steps make
irrelevant) or its sum (APGD).
Where ours differs from the reference on purpose (the random start, APGD's first oscillation comparison), a small
test pins our rule instead.
"""
import contextlib
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchattacks  # tests only, installed by `make deps`: a missing reference fails here rather than skipping

from mmequi.attacks import APGD, MIM, PGD
from mmequi.attacks.apgd import checkpoints
from mmequi.loop import per_image_norm

ATOL = 1e-6  # on [0, 1] images: far below a grey level (1/255), far above float64 rounding
REF_NORM = {'linf': 'Linf', 'l2': 'L2'}


@pytest.fixture(autouse=True)
def float64_one_thread():
    """torchattacks' APGD builds its step size and loss history with the default dtype: float64 on both sides, so
    no near-zero gradient changes sign through rounding. One thread: on these tiny tensors two threads only wait for
    each other when the cores are busy (40 ms a step instead of 0.2 ms)."""
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    yield
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).double().eval()


def batch():
    """Two different [0, 1] images on the grey levels (exact in both units; some at 0 or 1, so clipping acts)."""
    pixels = torch.randint(0, 256, (2, 3, 8, 8), generator=torch.Generator().manual_seed(1)).double()
    return pixels / 255, torch.tensor([1, 3])


class Scripted(nn.Module):
    """Logits (0, f) whose loss for label 0 (softplus f) follows a script, one value and one gradient direction per
    call: f = values[call] + Σ grads[call]·(x − x0) (``grads[call]``: a number for every pixel, or a pattern)."""

    def __init__(self, x0, values, grads):
        super().__init__()
        self.x0, self.values, self.grads, self.calls = x0, values, grads, 0
        self.weight = nn.Parameter(torch.zeros(1))  # torchattacks reads the device from a parameter

    def forward(self, x):
        i, self.calls = self.calls, self.calls + 1
        f = self.values[i] + (self.grads[i] * (x - self.x0)).flatten(1).sum(1) + self.weight
        return torch.stack([torch.zeros_like(f), f], 1)


def per_image_ce(model, labels):
    """Our objective: the per-image cross-entropy of ``model`` on 0–255 images."""
    return lambda images: F.cross_entropy(model(images / 255), labels, reduction='none')


@contextlib.contextmanager
def inputs_seen(model):
    """Every input the model sees, in order: the iterates of an attack (one forward each)."""
    seen = []
    handle = model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    try:
        yield seen
    finally:
        handle.remove()


def start_at(attack, start, x):
    """Make our attack start where torchattacks started (``start``, a [0, 1] image)."""
    delta = (start - x) * 255
    attack.random_delta = lambda images, generator: delta.clone()
    return attack


def reference_start(make_reference, x, y, seed=0):
    """torchattacks draws its start from the global RNG: the same attack with 0 steps under the same seed."""
    torch.manual_seed(seed)
    reference = make_reference(0)
    return reference.attack_single_run(x, y)[0] if isinstance(reference, torchattacks.APGD) else reference(x, y)


def run_both(model, x, y, ours, make_reference, seed=0):
    """(our result, the iterates ours evaluated, the reference's return value, its iterates), on [0, 1] images."""
    model.calls = 0  # a Scripted model replays its script for each side
    with inputs_seen(model) as ours_seen:
        adv = ours.perturb(x * 255, per_image_ce(model, y)) / 255
    torch.manual_seed(seed)
    reference, model.calls = make_reference(ours.steps), 0
    with inputs_seen(model) as theirs_seen:
        result = reference.attack_single_run(x, y) if isinstance(reference, torchattacks.APGD) else reference(x, y)
    return adv, ours_seen, result, theirs_seen


def assert_same_iterates(ours_seen, theirs_seen):
    assert len(ours_seen) == len(theirs_seen), 'not the same number of model evaluations'
    for step, (ours, theirs) in enumerate(zip(ours_seen, theirs_seen)):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=ATOL, msg=lambda m: f'iterate {step}: {m}')


@pytest.mark.parametrize('random_start', [False, True])
@pytest.mark.parametrize('norm', ['linf', 'l2'])
def test_pgd_iterates_match_torchattacks_pgd(norm, random_start):
    model, (x, y) = tiny_model(), batch()
    # L2: a step well inside the ball, so some iterates stay inside it (the projection must leave those alone)
    eps, step = (8 / 255, 2 / 255) if norm == 'linf' else (0.5, 0.1)
    kind = torchattacks.PGD if norm == 'linf' else torchattacks.PGDL2
    make = lambda steps: kind(model, eps=eps, alpha=step, steps=steps, random_start=random_start)  # noqa: E731
    ours = PGD(eps=eps * 255, step_size=step * 255, steps=10, norm=norm, random_start=random_start)
    if random_start:  # same distribution as ours (U(−ε, ε); L2: random direction, radius U(0, ε)), other draws
        start_at(ours, reference_start(make, x, y), x)
    adv, ours_seen, theirs, theirs_seen = run_both(model, x, y, ours, make)
    assert_same_iterates(ours_seen, theirs_seen)
    torch.testing.assert_close(adv, theirs, rtol=0, atol=ATOL)
    moved = (adv - x).abs().amax((1, 2, 3)) if norm == 'linf' else per_image_norm(adv - x, 2).flatten()
    assert (moved > eps / 2).all()


@pytest.mark.parametrize('momentum', [1.0, 0.5])
def test_mim_iterates_match_torchattacks_mifgsm(momentum):
    # torchattacks divides the gradient by its mean |·| per image, ours by its L1 norm: the same direction up to
    # the constant C·H·W, so the momenta have the same signs. MIFGSM has no random start.
    model, (x, y) = tiny_model(), batch()
    make = lambda steps: torchattacks.MIFGSM(model, eps=8 / 255, alpha=2 / 255, steps=steps, decay=momentum)  # noqa
    ours = MIM(momentum=momentum, eps=8, step_size=2, steps=10, random_start=False)
    adv, ours_seen, theirs, theirs_seen = run_both(model, x, y, ours, make)
    assert_same_iterates(ours_seen, theirs_seen)
    torch.testing.assert_close(adv, theirs, rtol=0, atol=ATOL)


def test_mim_matches_mifgsm_where_l1_and_l2_normalisation_disagree():
    # Gradients (1, 1, 1, 1) then (−1, 2, 0, 0): pixel 0 of the momentum is 1/4 − 1/3 < 0 with L1 (mean |·|)
    # normalisation, 1/2 − 1/√5 > 0 with L2: the second step takes pixel 0 back to 0, the others on to 2 steps.
    x = torch.full((1, 1, 2, 2), 0.5)
    model = Scripted(x, [0.0, 0.0], [torch.ones_like(x), torch.tensor([-1.0, 2.0, 0.0, 0.0]).view_as(x)])
    make = lambda steps: torchattacks.MIFGSM(model, eps=8 / 255, alpha=2 / 255, steps=steps, decay=1.0)  # noqa
    ours = MIM(momentum=1.0, eps=8, step_size=2, steps=2, random_start=False)
    adv, ours_seen, theirs, theirs_seen = run_both(model, x, torch.tensor([0]), ours, make)
    assert_same_iterates(ours_seen, theirs_seen)
    torch.testing.assert_close(adv, theirs, rtol=0, atol=ATOL)
    torch.testing.assert_close((adv - x) * 255, torch.tensor([0.0, 4.0, 4.0, 4.0]).view_as(x), rtol=0, atol=1e-9)


def halvings_with_restart(losses, steps, rho=0.75):
    """(checkpoint, image) pairs where APGD's oscillation rule halves the step (at most ``rho`` of the steps since
    the last checkpoint raised the loss) while the current iterate is not the best one, so it restarts elsewhere."""
    found, last = [], 0
    for mark in checkpoints(steps):
        raised = (losses[last + 1:mark + 1] > losses[last:mark]).sum(0)
        best = losses[:mark + 1].max(0).values
        found += [(mark, b) for b in range(losses.shape[1])
                  if raised[b] <= rho * (mark - last) and losses[mark, b] < best[b]]
        last = mark
    return found


@pytest.mark.parametrize('norm', ['linf', 'l2'])
def test_apgd_best_and_every_iterate_match_torchattacks_apgd(norm):
    model, (x, y), eps = tiny_model(), batch(), {'linf': 8 / 255, 'l2': 0.5}[norm]
    steps = 20  # ours: `steps` gradient evaluations + 1 forward; theirs: `steps` moves + 1 (1 + steps evaluations)
    make = lambda n: torchattacks.APGD(model, norm=REF_NORM[norm], eps=eps, steps=n, n_restarts=1, loss='ce',  # noqa
                                       rho=0.75, seed=0)
    ours = start_at(APGD(eps=eps * 255, steps=steps, norm=norm), reference_start(make, x, y), x)
    adv, ours_seen, (theirs, _, theirs_best_loss, _), theirs_seen = run_both(model, x, y, ours, make)
    assert_same_iterates(ours_seen, theirs_seen)
    torch.testing.assert_close(adv, theirs, rtol=0, atol=ATOL)  # the best iterate per image
    torch.testing.assert_close(per_image_ce(model, y)(adv * 255), theirs_best_loss, rtol=0, atol=1e-9)
    losses = torch.stack([F.cross_entropy(model(seen), y, reduction='none') for seen in ours_seen]).detach()
    # torchattacks counts the first step as a raise whatever it does (it compares with an unset 0); ours compares
    # it with the start: where the first step raises the loss, both count it.
    assert (losses[1] > losses[0]).all()
    # not vacuous: a step was halved and the attack restarted from a best point that was not the current one
    assert halvings_with_restart(losses, steps)


def test_apgd_first_checkpoint_ignores_no_improvement_as_torchattacks():
    # Nothing beats the start in the first 5 steps but every step after the first raises the loss: the reference
    # does not halve at its first checkpoint (its "halved last time" flags start True), and neither may ours.
    x, y, eps, steps = torch.full((1, 1, 2, 2), 0.5), torch.tensor([0]), 8 / 255, 23
    values = [5.0, 1.0, 2.0, 3.0, 4.0, 4.5] + [6.0 + i for i in range(steps - 5)]
    grads = [0.01] * 5 + [-0.01] + [0.01] * (steps - 5)  # the move after the first checkpoint (5) goes back down
    model = Scripted(x, values, grads)
    make = lambda n: torchattacks.APGD(model, eps=eps, steps=n, n_restarts=1, loss='ce', rho=0.75, seed=0)  # noqa
    ours = start_at(APGD(eps=eps * 255, steps=steps), reference_start(make, x, y), x)
    adv, ours_seen, (theirs, *_), theirs_seen = run_both(model, x, y, ours, make)
    assert checkpoints(steps)[0] == 5
    # no halving: from ε (where the + steps left it) a full 2ε step down, 3/4 of it taken: −ε/2
    torch.testing.assert_close(ours_seen[6] - x, torch.full_like(x, -eps / 2), rtol=0, atol=ATOL)
    assert_same_iterates(ours_seen, theirs_seen)
    torch.testing.assert_close(adv, theirs, rtol=0, atol=ATOL)


def test_apgd_counts_the_first_step_as_a_raise_only_if_it_beats_the_start():
    # Our rule (torchattacks compares the first step with an unset 0 instead, so it always counts it): the first
    # step lowers the loss, the next 3 raise it: 3 of 4 <= 0.75·4 raises, so ours halves at checkpoint 4.
    x, eps, steps = torch.full((1, 1, 2, 2), 127.5), 8.0, 20
    model = Scripted(x / 255, [1.0, 0.5, 2.0, 3.0, 4.0] + [5.0] * steps, [0.01] * 4 + [-0.01] * (steps - 3))
    assert checkpoints(steps)[0] == 4
    with inputs_seen(model) as seen:
        APGD(eps=eps, steps=steps, random_start=False).perturb(x, per_image_ce(model, torch.tensor([0])))
    # halved: from the best point (ε, the current one) a step of ε down, 3/4 of it taken: ε/4 (not halved: −ε/2)
    torch.testing.assert_close(seen[5] * 255 - x, torch.full_like(x, eps / 4), rtol=0, atol=1e-9)


def random_starts(norm, eps, batch_size):
    images = torch.full((batch_size, 3, 8, 8), 127.5)  # mid-grey: the pixel range clips nothing
    return PGD(eps=eps, norm=norm).run(images, None, torch.Generator().manual_seed(0)) - images


def test_linf_random_start_is_uniform_in_the_box():
    # ours draws U(−ε, ε) per pixel (torchattacks' APGD starts on the box's boundary instead)
    delta = random_starts('linf', 8.0, 64)  # 12 288 pixels
    assert delta.abs().max() <= 8.0
    assert abs(delta.mean()) < 0.2  # standard error 0.04
    assert abs(delta.std() / (8.0 / math.sqrt(3)) - 1) < 0.03
    assert abs((delta.abs() < 4.0).double().mean() - 0.5) < 0.03


def test_l2_random_start_is_inside_the_ball_at_a_uniform_radius():
    # ours: a random direction at a radius U(0, ε) (torchattacks' APGD starts on the sphere instead)
    delta = random_starts('l2', 255.0, 400)
    radius = per_image_norm(delta, 2).flatten()
    assert radius.max() <= 255.0 * (1 + 1e-9)
    assert (radius < 0.9 * 255.0).double().mean() > 0.8  # not on the sphere: U(0, ε) has 90 % below 0.9ε
    assert abs(radius.mean() / 127.5 - 1) < 0.1
    assert abs(delta.mean(dim=(1, 2, 3))).max() < 5.0  # no preferred direction
