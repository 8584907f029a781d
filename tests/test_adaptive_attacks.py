"""Adaptive attacks against the equivariance defense, on the demo Cityscapes-format segmentor (small images)."""
import pytest
import torch
from conftest import seeded
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmequi.attacks import BPDA, PGD, AttackContext, EquivarianceAwarePGD, FullGradientPGD
from mmequi.equivariance import compute_equivariance_score
from mmequi.models import SegRobustModel

DEFENSE = dict(type='EquivariancePurifier', num_views=2, eps=6, steps=2)


@pytest.fixture(scope='module')
def wrapper(demo_segmentor):
    return SegRobustModel(demo_segmentor, defense=DEFENSE, score=False)


@pytest.fixture
def image_and_objective(wrapper):
    gen = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (1, 3, 32, 64), generator=gen).float()
    sample = SegDataSample(metainfo=dict(img_path='a.png', ori_shape=(32, 64), img_shape=(32, 64)))
    sample.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, 32, 64), generator=gen))
    return image, wrapper.task_objective(sample)


def test_equivariance_term_has_a_gradient_on_the_perturbed_image(wrapper, image_and_objective):
    image, objective = image_and_objective
    attack = EquivarianceAwarePGD(lam=1.0, eps=4, step_size=1, steps=1)
    call = attack.prepare(objective, wrapper.attack_context(), seeded())  # holds the defense's objective
    delta = torch.zeros_like(image, requires_grad=True)
    with torch.enable_grad():
        grad, = torch.autograd.grad(attack.defense_term(call, image + delta).sum(), delta)
    assert grad.abs().sum() > 0
    # The reference's term, on the unperturbed image, cannot move δ at all.
    with torch.enable_grad():
        reference = compute_equivariance_score(wrapper.feature_fn, image, wrapper.defense.objective.transforms,
                                               seeded())
    assert not reference.requires_grad or torch.autograd.grad(reference.sum(), delta, allow_unused=True)[0] is None


def test_equivariance_aware_pgd_differs_from_pgd_and_respects_eps(wrapper, image_and_objective):
    image, objective = image_and_objective
    plain = PGD(eps=4, step_size=1, steps=3).perturb(image, objective, seeded())
    aware = EquivarianceAwarePGD(lam=50.0, eps=4, step_size=1, steps=3).perturb(image, objective, seeded(),
                                                                              context=wrapper.attack_context())
    assert (aware - image).abs().max() <= 4 + 1e-4 and aware.min() >= 0 and aware.max() <= 255
    assert not torch.equal(plain, aware)


def test_bpda_forward_is_the_purifier_backward_the_identity(wrapper, image_and_objective):
    image, objective = image_and_objective
    attack = BPDA(eot=1, eps=4, step_size=1, steps=1)
    call = attack.prepare(objective, wrapper.attack_context(), seeded(5))
    adv = image.clone().requires_grad_(True)
    with torch.enable_grad():
        grad, = torch.autograd.grad(attack.loss(call, adv, 0).sum(), adv)
    purified = wrapper.defense.purify(image, wrapper.defense_feature_fn, seeded(5))
    x = purified.clone().requires_grad_(True)
    with torch.enable_grad():
        expected, = torch.autograd.grad(objective(x).sum(), x)
        y = image.clone().requires_grad_(True)
        at_the_input, = torch.autograd.grad(objective(y).sum(), y)
    # Compared relative to the gradient's own scale (the mean-CE gradients are ~1e-7 per pixel).
    scale = expected.abs().max()
    assert scale > 0 and (grad - expected).abs().max() <= 1e-3 * scale
    # ... and the gradient at the un-purified image is a different vector.
    assert (at_the_input - expected).abs().max() > 0.1 * scale


def test_unrolled_purifier_matches_the_purifier_and_passes_gradients(wrapper, image_and_objective):
    image, objective = image_and_objective
    defense = wrapper.defense
    purified = defense.purify(image, wrapper.feature_fn, seeded(3))
    x = image.clone().requires_grad_(True)
    with torch.enable_grad():
        unrolled = defense.purify_unrolled(x, wrapper.feature_fn, seeded(3))
        assert (unrolled.detach() - purified).abs().max() < 1e-3
        grad, = torch.autograd.grad(objective(unrolled).sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_full_gradient_attack_respects_eps(wrapper, image_and_objective):
    image, objective = image_and_objective
    adv = FullGradientPGD(eps=4, step_size=1, steps=1).perturb(image, objective, seeded(),
                                                              context=wrapper.attack_context())
    assert 0 < (adv - image).abs().max() <= 4 + 1e-4


@pytest.mark.parametrize('attack', [EquivarianceAwarePGD(steps=1), BPDA(steps=1), FullGradientPGD(steps=1)])
def test_adaptive_attacks_need_a_defense(wrapper, image_and_objective, attack):
    image, _ = image_and_objective
    undefended = SegRobustModel(wrapper.module, score=False)
    sample = SegDataSample(metainfo=dict(img_path='a.png', ori_shape=(32, 64), img_shape=(32, 64)))
    sample.gt_sem_seg = PixelData(data=torch.zeros(1, 32, 64, dtype=torch.long))
    for context in (None, undefended.attack_context(), AttackContext()):
        with pytest.raises(ValueError, match='adaptive attack: it needs a RobustModel with a defense'):
            attack.perturb(image, undefended.task_objective(sample), seeded(), context=context)


def test_bad_eot_is_refused():
    with pytest.raises(ValueError, match='eot'):
        BPDA(eot=0)


def test_equivariance_aware_pgd_raises_the_defense_objective(wrapper, image_and_objective):
    """The λ-term pushes the attacked image towards what the defense wants (a sign error would push it away)."""
    image, objective = image_and_objective
    context = wrapper.attack_context()
    plain = PGD(eps=8, step_size=2, steps=4).perturb(image, objective, seeded())
    aware = EquivarianceAwarePGD(lam=1000.0, eps=8, step_size=2, steps=4).perturb(image, objective, seeded(),
                                                                                 context=context)
    score = wrapper.defense.objective
    with torch.no_grad():
        assert score(aware, context.feature_fn, seeded(9)) > score(plain, context.feature_fn, seeded(9))


def test_bpda_averages_eot_purifier_draws(wrapper, image_and_objective, monkeypatch):
    image, objective = image_and_objective
    calls = []
    purify = wrapper.defense.purify
    monkeypatch.setattr(wrapper.defense, 'purify', lambda *args, **kwargs: calls.append(1) or purify(*args, **kwargs))
    BPDA(eot=3, eps=4, step_size=1, steps=2).perturb(image, objective, seeded(), context=wrapper.attack_context())
    assert len(calls) == 3 * 2  # eot draws at every step


@pytest.mark.parametrize('attack', [dict(type='BPDA', eot=1, steps=1), dict(type='BPDAAPGD', steps=1),
                                    dict(type='SegEnsemble', steps=1, through_defense=True)])
def test_adaptive_attack_without_a_defense_is_refused_before_any_work(wrapper, attack):
    with pytest.raises(ValueError, match='adaptive attack: it attacks the defended model and needs a defense'):
        SegRobustModel(wrapper.module, attack=attack)


def test_against_a_gate_the_equivariance_term_is_a_hinge_at_the_gate(wrapper, image_and_objective):
    """A gated defense purifies only inputs scoring below its gate: the attack pushes the score past the gate and no
    further. Above the gate the term is 0 with no gradient (the attack is plain PGD); below it, it pulls the score
    up."""
    from mmequi.defenses import EquivariancePurifier
    image, objective = image_and_objective
    plain = PGD(eps=4, step_size=1, steps=3).perturb(image, objective, seeded())
    for gate, same in ((-1.0, True), (1.0, False)):
        context = AttackContext(EquivariancePurifier(num_views=2, eps=6, steps=2, gate=gate), wrapper.feature_fn)
        attack = EquivarianceAwarePGD(lam=100.0, eps=4, step_size=1, steps=3)
        call = attack.prepare(objective, context, seeded())
        term = attack.defense_term(call, image)
        assert (term == 0).all() if same else (term < 0).all()
        adv = attack.perturb(image, objective, seeded(), context=context)
        assert torch.equal(adv, plain) == same
