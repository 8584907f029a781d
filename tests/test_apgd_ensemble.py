"""APGD, the segmentation losses and the SEA-style ensemble: bounds, schedule, best iterate, losses against their
formulas, worst case per image, and errors named before any work."""
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import seeded
from test_attacks import SegmentationObjective, images_like

from mmequi.attacks import APGD, BPDAAPGD, PGD, SEG_LOSSES, AttackContext, SegEnsemble
from mmequi.attacks.apgd import checkpoints, stage_steps
from mmequi.attacks.seg_losses import seg_loss
from mmequi.evaluation.areas import miou, pixel_accuracy


class LogitObjective(SegmentationObjective):
    """The small random segmenter of test_attacks, with the logits the segmentation losses need."""

    def logits_and_labels(self, images):
        self.seen.append(images.detach().clone())
        logits = self.net(images / 255 - 0.5)
        return logits, self.labels, self.labels != 255


def test_checkpoints_follow_the_reference_schedule():
    # 22 % of the budget, then intervals shrinking by 3 % of it down to 6 %
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(10) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert stage_steps(10, (0.3, 0.3, 0.4)) == [3, 3, 4] and sum(stage_steps(7, (0.3, 0.3, 0.4))) == 7


@pytest.mark.parametrize('norm,eps', [('linf', 4.0), ('l2', 300.0)])
@pytest.mark.parametrize('radii,fractions', [((1.0,), None), ((2.0, 1.5, 1.0), (0.3, 0.3, 0.4))])
def test_apgd_stays_in_the_ball_the_range_and_off_the_padding(norm, eps, radii, fractions):
    objective = LogitObjective(2, 12, 14, seed=3)
    images = images_like(2, 12, 14, 3)
    valid = torch.ones(2, 1, 12, 14)
    valid[..., -2:, :] = 0
    attack = APGD(eps=eps, steps=12, norm=norm, radii=radii, radius_fractions=fractions, seg_loss='ce')
    adv = attack.perturb(images, objective, seeded(1), valid_mask=valid)
    delta = adv - images
    norms = delta.flatten(1).abs().amax(1) if norm == 'linf' else delta.flatten(1).norm(dim=1)
    assert (norms <= eps + 1e-3).all() and adv.min() >= 0 and adv.max() <= 255
    padding = valid.expand_as(adv) == 0
    assert torch.equal(adv[padding], images[padding]) and not torch.equal(adv, images)
    limit = eps * max(radii) + 1e-3  # the iterates of a stage stay in that stage's ball
    for iterate in objective.seen:
        d = iterate - images
        assert (d.flatten(1).abs().amax(1) if norm == 'linf' else d.flatten(1).norm(dim=1)).max() <= limit
        assert torch.equal(iterate[padding], images[padding])
    assert len(objective.seen) == 12 + len(radii)  # steps gradients + one scoring forward per stage


def test_apgd_returns_the_best_iterate_per_image():
    objective = LogitObjective(3, 10, 10, seed=5)
    images = images_like(3, 10, 10, 5)
    adv = APGD(eps=8, steps=10, seg_loss='ce').perturb(images, objective, seeded(2))
    seen = list(objective.seen)  # every iterate APGD evaluated
    with torch.no_grad():
        values = torch.stack([seg_loss('ce', objective, x, 0) for x in seen])
        assert torch.allclose(seg_loss('ce', objective, adv, 0), values.max(0).values, atol=1e-6)


def test_apgd_halves_its_step_and_converges_inside_the_ball():
    # A concave loss with its maximum inside the ball: fixed sign steps of 2ε oscillate around it forever, APGD's
    # halved steps close in on it (a schedule that never halves stays ≥ ε away).
    target = torch.full((1, 3, 4, 4), 100.5)
    images = torch.full((1, 3, 4, 4), 100.0)

    def loss(x):
        return -((x - target) ** 2).flatten(1).sum(1)

    apgd = APGD(eps=4, steps=60, random_start=False).perturb(images, loss)
    pgd = PGD(eps=4, step_size=8, steps=60, random_start=False).perturb(images, loss)
    assert (apgd - target).abs().max() < 0.1 < (pgd - target).abs().max()


def test_progressive_radius_runs_its_first_stages_in_the_larger_balls():
    """radii (2, 1): the first half of the steps may go up to 2ε from the image, the rest stays within ε."""
    images = images_like(1, 6, 6, 3)
    seen = []

    def objective(x):
        seen.append((x - images).abs().amax().item())
        return (x * torch.linspace(-1, 1, x.numel()).view_as(x)).flatten(1).sum(1)
    adv = APGD(eps=4, steps=10, radii=(2.0, 1.0), radius_fractions=(0.5, 0.5)).perturb(images, objective, seeded(0))
    assert max(seen[:5]) > 4 + 1e-3 and max(seen[:5]) <= 8 + 1e-4
    assert max(seen[6:]) <= 4 + 1e-4 and (adv - images).abs().max() <= 4 + 1e-4


def test_apgd_on_a_linear_objective_reaches_the_box_corner():
    # On a linear loss every step raises it: APGD goes straight to the box corner (as PGD does).
    weights = torch.randn(1, 3, 5, 6, generator=seeded(0))
    images = 50 + images_like(1, 5, 6, 1) * 0.5
    adv = APGD(eps=4, steps=5, random_start=False).perturb(images, lambda x: (weights * x).flatten(1).sum(1))
    assert torch.allclose(adv, images + 4 * weights.sign(), atol=1e-4)


def _reference_losses(logits, labels, valid):
    """The SEA / CosPGD losses written out pixel by pixel, for one image."""
    p = logits.softmax(0)
    ce = F.cross_entropy(logits[None], torch.where(valid, labels, 0)[None], reduction='none')[0]
    n = valid.sum()
    correct = (logits.argmax(0) == labels) & valid
    out = {'ce': (ce * valid).sum() / n, 'masked_ce': (ce * correct).sum() / n}
    classes = labels[valid].unique()
    out['balanced_ce'] = sum(ce[(labels == c) & valid].mean() for c in classes) / len(classes)
    onehot = F.one_hot(torch.where(valid, labels, 0), logits.shape[0]).permute(2, 0, 1).float()
    m = (p + onehot) / 2
    kl = lambda a, b: (a * (a.clamp_min(1e-30) / b.clamp_min(1e-30)).log()).sum(0)  # noqa: E731
    out['js'] = ((0.5 * kl(p, m) + 0.5 * kl(onehot, m)) * valid).sum() / n
    cosine = (p * onehot).sum(0) / p.norm(dim=0)
    out['cospgd'] = (cosine * ce * valid).sum() / n
    return out


def test_segmentation_losses_match_their_formulas():
    logits = torch.randn(2, 8, 6, 7, generator=seeded(0)) * 3
    labels = torch.randint(0, 5, (2, 6, 7), generator=seeded(1))  # classes 5–7 in no label: balanced CE skips them
    labels[:, 0] = 255
    valid = labels != 255
    for name, value in _reference_losses(logits[1], labels[1], valid[1]).items():
        got = SEG_LOSSES[name](logits, labels, valid, 0.0)
        assert got.shape == (2,) and got[1].item() == pytest.approx(value.item(), rel=1e-5), name


def test_cospgd_weight_is_not_differentiated():
    logits = torch.randn(1, 4, 3, 3, generator=seeded(0), requires_grad=True)
    labels = torch.randint(0, 4, (1, 3, 3), generator=seeded(1))
    valid = torch.ones_like(labels, dtype=torch.bool)
    grad, = torch.autograd.grad(SEG_LOSSES['cospgd'](logits, labels, valid, 0).sum(), logits)
    p = logits.detach().softmax(1)
    cosine = p.gather(1, labels[:, None])[:, 0] / p.norm(dim=1)
    ce_grad = (p - F.one_hot(labels, 4).permute(0, 3, 1, 2)) / 9  # ∂ mean CE / ∂ logits
    assert torch.allclose(grad, ce_grad * cosine[:, None], atol=1e-6)


def test_masked_ce_ignores_the_pixels_already_wrong():
    logits = torch.tensor([[[[5.0, -5.0]], [[0.0, 0.0]]]])  # 1×2×1×2: pixel 0 says class 0, pixel 1 class 1
    labels = torch.tensor([[[0, 0]]])
    valid = torch.ones_like(labels, dtype=torch.bool)
    ce = F.cross_entropy(logits, labels, reduction='none')
    assert SEG_LOSSES['masked_ce'](logits, labels, valid, 0).item() == pytest.approx(ce[0, 0, 0].item() / 2)


class Inverting:
    """A purifier with a large effect, for the attacks that go through the defense: 255 − x."""
    objective = None

    def purify(self, x, feature_fn, generator):
        return 255 - x


class CandidateRecorder(SegEnsemble):
    def worst(self, candidates, objective, context, generator):
        self.seen = candidates
        return super().worst(candidates, objective, context, generator)


@pytest.mark.parametrize('select', ['acc', 'miou'])
def test_ensemble_keeps_the_worst_candidate_per_image(select):
    objective = LogitObjective(1, 12, 12, seed=7)
    images = images_like(1, 12, 12, 7)
    attack = CandidateRecorder(eps=8, steps=6, select=select)
    adv = attack.perturb(images, objective, seeded(0))
    assert (adv - images).abs().max() <= 8 + 1e-4 and len(attack.seen) == 4
    with torch.no_grad():
        def score(x):
            areas = SegEnsemble.counts(attack, x, objective, None, None)
            return pixel_accuracy(areas) if select == 'acc' else miou(areas)
        assert score(adv) == min(score(c) for c in attack.seen)  # one image: the running mIoU is its own
    assert any(torch.equal(adv, c) for c in attack.seen)


def test_ensemble_running_miou_picks_what_lowers_the_dataset_miou():
    attack = SegEnsemble(steps=1)
    attack._areas = {0: [10, 10, 10], 1: [0, 10, 10]}  # {class: [intersection, union, label]}
    # candidate 0 wrongs 5 pixels of class 0 (new to nobody), candidate 1 adds a class-2 pixel predicted wrong
    counts = [{0: [5, 10, 10], 1: [5, 5, 5]}, {0: [5, 5, 5], 1: [5, 5, 5], 2: [0, 1, 1]}]
    attack.counts = lambda c, *args: counts[int(c)]
    assert attack.worst([0, 1], None, None, None) == 1  # mIoU (15/15 + 5/15 + 0/1) / 3 < (15/20 + 5/15) / 2
    assert attack._areas == {0: [15, 15, 15], 1: [5, 15, 15], 2: [0, 1, 1]}


def test_bpda_apgd_takes_the_loss_at_the_purified_image():
    objective = LogitObjective(1, 8, 8, seed=2)
    images = images_like(1, 8, 8, 2)

    attack = BPDAAPGD(eot=1, eps=4, steps=3, seg_loss='ce')
    attack.perturb(images, objective, seeded(0), context=AttackContext(Inverting(), None))
    assert all(torch.allclose(255 - x, images, atol=4 + 1e-4) for x in objective.seen)


@pytest.mark.parametrize('make,match', [
    (lambda: SegEnsemble(losses=['masked_ce', 'dice']), r"unknown segmentation ensemble loss 'dice'"),
    (lambda: SegEnsemble(losses='js'), 'non-empty list'),
    (lambda: SegEnsemble(select='aAcc'), "unknown SegEnsemble select 'aAcc'"),
    (lambda: APGD(radii=(2.0, 1.5)), 'ending with 1'),
    (lambda: PGD(seg_loss='focal'), r"unknown segmentation loss \(seg_loss\) 'focal'"),
    (lambda: PGD(eps=0.03), r'eps=0.03 is in pixel units .* for 8/255 write eps=8'),
    (lambda: APGD(eps=8 / 255), r'for 8/255 write eps=8'),
])
def test_bad_settings_are_named_at_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_ensemble_and_seg_losses_need_a_segmentor():
    from test_attacks import ClassifierObjective
    with pytest.raises(ValueError, match='SegEnsemble attacks segmentors'):
        SegEnsemble(steps=1).perturb(images_like(1, 8, 8, 0), ClassifierObjective(1))
    with pytest.raises(ValueError, match="seg_loss='js' needs a segmentation objective"):
        APGD(steps=1, seg_loss='js').perturb(images_like(1, 8, 8, 0), ClassifierObjective(1))
    with pytest.raises(ValueError, match='adaptive attack'):
        SegEnsemble(steps=1, through_defense=True).perturb(images_like(1, 8, 8, 0), LogitObjective(1, 8, 8))


def test_pixel_range_in_0_1_accepts_fractional_eps():
    images = images_like(1, 6, 6, 0) / 255
    adv = APGD(eps=8 / 255, steps=2, pixel_range=(0.0, 1.0)).perturb(images, lambda x: x.flatten(1).sum(1))
    assert (adv - images).abs().max() <= 8 / 255 + 1e-6 and not math.isnan(float(adv.sum()))


def test_adaptive_ensemble_judges_the_defended_prediction():
    objective = LogitObjective(1, 10, 10, seed=0)
    images = images_like(1, 10, 10, 0)

    attack = CandidateRecorder(eps=8, steps=4, select='acc', through_defense=True)
    adv = attack.perturb(images, objective, seeded(0), context=AttackContext(Inverting(), None))
    with torch.no_grad():
        def accuracy(x):
            logits, labels, valid = objective.logits_and_labels(x)
            return ((logits.argmax(1) == labels) & valid).sum().item()
        defended = [accuracy(255 - c) for c in attack.seen]
        undefended = [accuracy(c) for c in attack.seen]
    # on these images the worst candidate through the defense is not the worst one without it
    assert defended.index(min(defended)) != undefended.index(min(undefended))
    assert accuracy(255 - adv) == min(defended)
