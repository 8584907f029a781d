"""PGD, MIM and SegPGD over the shared projected-gradient loop."""
import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mmequi.attacks import APGD, BPDA, BPDAAPGD, MIM, PGD, Attack, AttackContext, EquivarianceAwarePGD, SegPGD
from mmequi.registry import ATTACKS


ATTACK_CLASSES = [PGD, MIM, SegPGD]


class SegmentationObjective:
    """Pixel cross-entropy of a small random conv segmenter with ignore_index 255, as a task adapter builds it."""

    def __init__(self, batch, height, width, seed=0):
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3, 1, 1))
        self.net[1].running_var.uniform_(0.5, 1.5)
        self.net.eval()
        self.labels = torch.randint(0, 4, (batch, height, width))
        self.labels[:, 0, :] = 255  # ignored pixels
        self.seen = []  # every image the attack evaluates, to check the iterates and not only the result

    def pixel_losses(self, images):
        self.seen.append(images.detach().clone())
        logits = self.net(images / 255 - 0.5)
        ce = F.cross_entropy(logits, self.labels, ignore_index=255, reduction='none')
        valid = self.labels != 255
        return ce, (logits.argmax(1) == self.labels) & valid, valid

    def __call__(self, images):
        ce, _, valid = self.pixel_losses(images)
        return (ce * valid).flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1)


class ClassifierObjective:
    """Cross-entropy of a small random conv classifier."""

    def __init__(self, batch, seed=0):
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(8, 5)).eval()
        self.labels = torch.randint(0, 5, (batch,))

    def __call__(self, images):
        return F.cross_entropy(self.net(images / 255 - 0.5), self.labels, reduction='none')


def images_like(batch, height, width, seed):
    images = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed)) * 255
    images[..., 0, 0], images[..., -1, -1] = 0.0, 255.0
    return images


@settings(max_examples=25, deadline=None, derandomize=True)
@given(attack_class=st.sampled_from(ATTACK_CLASSES), batch=st.integers(1, 3), height=st.integers(5, 19),
       width=st.integers(5, 19), eps=st.one_of(st.just(0.0), st.floats(1.0, 16.0)), step_size=st.floats(0.1, 20.0),
       norm=st.sampled_from(['linf', 'l2']), steps=st.integers(0, 3), pad=st.integers(0, 3),
       random_start=st.booleans(), seed=st.integers(0, 10_000))
def test_adversarial_images_stay_in_the_ball_the_range_and_off_the_padding(attack_class, batch, height, width, eps,
                                                                           step_size, norm, steps, pad, random_start,
                                                                           seed):
    objective = SegmentationObjective(batch, height, width, seed)
    images = images_like(batch, height, width, seed)
    valid = torch.zeros(batch, 1, height, width)
    valid[..., :height - pad, :width - pad] = 1
    attack = attack_class(eps=eps, step_size=step_size, steps=steps, norm=norm, random_start=random_start)
    adv = attack.perturb(images, objective, torch.Generator().manual_seed(seed), valid_mask=valid)
    delta = adv - images
    assert adv.shape == images.shape and not adv.requires_grad
    assert adv.min() >= 0 and adv.max() <= 255
    norms = delta.flatten(1).abs().amax(1) if norm == 'linf' else delta.flatten(1).norm(dim=1)
    assert (norms <= eps + 1e-4).all()
    padding = valid.expand_as(adv) == 0
    assert torch.equal(adv[padding], images[padding])
    assert len(objective.seen) == (steps if eps > 0 else 0)
    for iterate in objective.seen:
        assert torch.equal(iterate[padding], images[padding])
        assert iterate.min() >= 0 and iterate.max() <= 255


@pytest.mark.parametrize('attack', [PGD(eps=4, steps=10), PGD(eps=200, step_size=50, steps=10, norm='l2'),
                                    MIM(eps=4, steps=10), MIM(eps=200, step_size=50, steps=10, norm='l2')])
def test_attack_increases_the_classifier_loss(attack):
    objective = ClassifierObjective(4)
    images = images_like(4, 16, 16, 0)
    adv = attack.perturb(images, objective, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (objective(adv) > objective(images)).all()


def test_segpgd_increases_the_pixel_loss_and_flips_pixels():
    objective = SegmentationObjective(2, 16, 16)
    images = images_like(2, 16, 16, 0)
    adv = SegPGD(eps=8, steps=10).perturb(images, objective, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (objective(adv) > objective(images)).all()
        assert objective.pixel_losses(adv)[1].sum() < objective.pixel_losses(images)[1].sum()


def test_pgd_on_a_linear_objective_moves_every_pixel_to_the_box_corner():
    # max w·x over the L∞ box: x + ε·sign(w), clipped to the range; over the L2 ball: x + ε·w/‖w‖.
    weights = torch.randn(1, 3, 6, 7, generator=torch.Generator().manual_seed(0))
    images = 20 + images_like(2, 6, 7, 1) * 0.8

    def linear(x):
        return (weights * x).flatten(1).sum(1)

    adv = PGD(eps=4, step_size=1, steps=6, random_start=False).perturb(images, linear)
    assert torch.allclose(adv, images + 4 * weights.sign(), atol=1e-4)
    adv = PGD(eps=4, step_size=1, steps=6, norm='l2', random_start=False).perturb(images, linear)
    assert torch.allclose(adv, images + 4 * weights / weights.norm(), atol=1e-4)


def test_mim_accumulates_l1_normalised_gradients():
    mim, state = MIM(momentum=0.5), {}
    g1, g2 = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)

    def l1(g):
        return g / g.flatten(1).abs().sum(1).view(-1, 1, 1, 1)

    assert torch.allclose(mim.direction(g1, 0, state, None), l1(g1))
    assert torch.allclose(mim.direction(g2, 1, state, None), 0.5 * l1(g1) + l1(g2))


def test_segpgd_weights_correct_and_wrong_pixels_by_the_schedule():
    class Fixed:
        def pixel_losses(self, images):
            ce = torch.tensor([[[1.0, 2.0, 4.0, 8.0]]])
            correct = torch.tensor([[[True, True, False, False]]])
            valid = torch.tensor([[[True, True, True, False]]])
            return ce, correct, valid

    attack, adv = SegPGD(steps=10), torch.zeros(1, 3, 1, 4)
    for step in (0, 5, 9):
        lam = step / 20
        expected = ((1 - lam) * (1.0 + 2.0) + lam * 4.0) / 3  # the ignored pixel counts nowhere
        assert attack.loss(attack.prepare(Fixed()), adv, step).item() == pytest.approx(expected)


def test_segpgd_needs_pixel_losses():
    with pytest.raises(ValueError, match=r'SegPGD needs a segmentation objective with pixel_losses\(\)'):
        SegPGD(steps=2).perturb(images_like(1, 8, 8, 0), ClassifierObjective(1))


@pytest.mark.parametrize('attack_class', ATTACK_CLASSES)
def test_model_is_untouched_and_no_gradients_are_left_behind(attack_class):
    objective = SegmentationObjective(2, 12, 12)
    before = copy.deepcopy(objective.net.state_dict())
    images = images_like(2, 12, 12, 0)
    with torch.no_grad():  # as mmengine's TestLoop calls it
        adv = attack_class(eps=4, steps=3).perturb(images, objective, torch.Generator().manual_seed(0))
    assert not torch.equal(adv, images)
    assert all(p.grad is None for p in objective.net.parameters())
    assert all(torch.equal(before[k], v) for k, v in objective.net.state_dict().items())


@pytest.mark.parametrize('attack_class', ATTACK_CLASSES)
def test_same_seed_same_output(attack_class):
    objective, images = SegmentationObjective(1, 10, 10), images_like(1, 10, 10, 0)
    runs = [attack_class(eps=4, steps=2).perturb(images, objective, torch.Generator().manual_seed(s))
            for s in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


class NoisyDefense:
    """A random purifier (adds generator noise) with a random objective (a random weighting): draws that an attack
    must take from its own call's generator."""

    def purify(self, x, feature_fn, generator):
        return (x + 8 * torch.randn(x.shape, generator=generator)).clamp(0, 255)

    def objective(self, x, feature_fn, generator):
        return (x * torch.randn(x.shape, generator=generator)).flatten(1).mean(1)


@pytest.mark.parametrize('make', [lambda: APGD(eps=4, steps=6, radii=(2.0, 1.0)), lambda: BPDA(eot=2, eps=4, steps=3),
                                  lambda: BPDAAPGD(eot=2, eps=4, steps=4, radii=(2.0, 1.0)),
                                  lambda: EquivarianceAwarePGD(lam=1.0, eps=4, steps=3)],
                         ids=['apgd-radii', 'bpda', 'bpda-apgd', 'equivariance-aware'])
def test_one_attack_instance_serves_a_call_made_inside_another(make):
    """An attack keeps no per-call state on itself (stage radius, defense, generator): a second call made while the
    first is running (another image of a threaded or nested evaluation) changes neither result."""
    context = AttackContext(NoisyDefense(), None)
    first, second = images_like(1, 8, 8, 1), images_like(1, 8, 8, 2)
    objective = ClassifierObjective(1)
    alone = [make().perturb(x, objective, torch.Generator().manual_seed(s), context=context)
             for x, s in ((first, 1), (second, 2))]
    attack, inner = make(), []

    def nesting(x):
        if not inner:
            inner.append(attack.perturb(second, objective, torch.Generator().manual_seed(2), context=context))
        return objective(x)
    outer = attack.perturb(first, nesting, torch.Generator().manual_seed(1), context=context)
    assert torch.equal(inner[0], alone[1]) and torch.equal(outer, alone[0])


@pytest.mark.parametrize('attack', [PGD(eps=0), PGD(steps=0), MIM(eps=0), SegPGD(steps=0)])
def test_zero_budget_or_zero_steps_return_the_input(attack):
    images = images_like(1, 8, 8, 0)
    assert torch.equal(attack.perturb(images, SegmentationObjective(1, 8, 8)), images)


def test_build_from_config():
    attack = ATTACKS.build(dict(type='PGD', eps=4.0, step_size=1.0, steps=50, norm='L2'))
    assert isinstance(attack, PGD) and attack.norm == 'l2' and attack.steps == 50
    assert ATTACKS.build(dict(type='MIM', momentum=0.9)).momentum == 0.9
    assert isinstance(ATTACKS.build(dict(type='SegPGD')), SegPGD)
    assert isinstance(attack, Attack)


@pytest.mark.parametrize('kwargs, match', [
    (dict(eps=-1.0), 'eps'),
    (dict(eps=float('nan')), 'eps'),
    (dict(step_size=0.0), 'step_size'),
    (dict(steps=-1), 'steps'),
    (dict(steps=2.5), 'steps'),
    (dict(norm='l1'), 'unknown norm'),
    (dict(pixel_range=(1.0, 1.0)), 'pixel_range'),
])
def test_bad_configuration_raises_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PGD(**kwargs)
    with pytest.raises(ValueError, match='momentum'):
        MIM(momentum=-0.1)


def test_bad_call_raises_value_error():
    images = images_like(2, 8, 8, 0)
    objective = SegmentationObjective(2, 8, 8)
    attack = PGD(steps=1)
    with pytest.raises(ValueError, match='one loss per image'):
        attack.perturb(images, lambda x: objective(x).sum())
    with pytest.raises(ValueError, match='differentiable'):
        attack.perturb(images, lambda x: objective(x.detach()))
    with pytest.raises(ValueError, match='valid_mask'):
        attack.perturb(images, objective, valid_mask=torch.ones(2, 3, 8, 8))
    with pytest.raises(ValueError, match='generator'):
        attack.perturb(images, objective, generator=torch.Generator().manual_seed(0).seed())
    with pytest.raises(ValueError, match='floating-point'):
        attack.perturb(images.to(torch.uint8), objective)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_run_matches_cpu_run():
    objective, images = SegmentationObjective(2, 12, 12), images_like(2, 12, 12, 0)
    adv_cpu = PGD(eps=4, steps=3).perturb(images, objective, torch.Generator().manual_seed(0))
    objective.net.cuda()
    objective.labels = objective.labels.cuda()
    adv_gpu = PGD(eps=4, steps=3).perturb(images.cuda(), objective, torch.Generator().manual_seed(0))
    assert adv_gpu.is_cuda
    assert ((adv_gpu.cpu() - adv_cpu).abs() > 1e-3).float().mean() < 0.01
