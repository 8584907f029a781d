"""The equivariance purifier (docs/method.md, Algorithm 1) and the random-noise and invariance baselines."""
import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from conftest import seeded

from mmequi.attacks import PGD, Attack
from mmequi.defenses import Defense, EquivariancePurifier, InvariancePurifier, RandomNoiseDefense
from mmequi.equivariance import EquivarianceScorer, HFlip, Resize, Rotate, compute_equivariance_score
from mmequi.registry import DEFENSES


def align(pooled):
    """The invariance baseline's view (pooled) or Eq. 2's (inverted), as each objective passes it."""
    from mmequi.equivariance import EquivarianceObjective, InvarianceObjective
    return (InvarianceObjective if pooled else EquivarianceObjective).align


FAST_VIEWS = [HFlip(), Rotate(15), Resize(0.5)]


def small_net(seed=0):
    """Stride-2 conv net with a BatchNorm whose running statistics must survive purification."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 5, 3, 1, 1))
    net[1].running_mean.uniform_(-0.1, 0.1)
    net[1].running_var.uniform_(0.5, 1.5)
    net.eval()
    return lambda x: net(x / 255 - 0.5), net


def images_like(batch, height, width, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, height, width, generator=g) * 255
    images[..., 0, 0] = 0.0  # pixels at both ends of the range
    images[..., -1, -1] = 255.0
    return images


def padding_mask(batch, height, width, pad_h, pad_w):
    """mm-style padding at the bottom and right: those pixels must never be perturbed."""
    valid = torch.zeros(batch, 1, height, width)
    valid[..., :height - pad_h, :width - pad_w] = 1
    return valid


@settings(max_examples=20, deadline=None, derandomize=True)
@given(batch=st.integers(1, 2), height=st.integers(9, 21), width=st.integers(9, 21),
       eps=st.one_of(st.just(0.0), st.floats(1.0, 10.0)), norm=st.sampled_from(['linf', 'l2']), pad=st.integers(0, 4),
       seed=st.integers(0, 10_000), pooled=st.booleans())
def test_purified_images_stay_in_the_ball_the_range_and_off_the_padding(batch, height, width, eps, norm, pad, seed,
                                                                        pooled):
    feature_fn, _ = small_net()
    images = images_like(batch, height, width, seed)
    valid = padding_mask(batch, height, width, pad, pad // 2)
    purifier = (InvariancePurifier if pooled else EquivariancePurifier)(FAST_VIEWS, eps=eps, steps=2, norm=norm)
    out = purifier.purify(images, feature_fn, torch.Generator().manual_seed(seed), valid_mask=valid)
    delta = out - images
    assert out.shape == images.shape and not out.requires_grad
    assert out.min() >= 0 and out.max() <= 255
    norms = delta.flatten(1).abs().amax(1) if norm == 'linf' else delta.flatten(1).norm(dim=1)
    assert (norms <= eps + 1e-4).all()
    assert torch.equal(out[valid.expand_as(out) == 0], images[valid.expand_as(out) == 0])


def algorithm_1(images, feature_fn, views, eps, steps, step_size, generator):
    """docs/method.md's Algorithm 1 written out literally, drawing random numbers in the purifier's order."""
    delta = (2 * torch.rand(images.shape, generator=generator) - 1) * eps
    delta = (images + delta).clamp(0, 255) - images
    for t in range(steps):
        delta.requires_grad_(True)
        loss = -compute_equivariance_score(feature_fn, images + delta, views, generator).sum()
        g, = torch.autograd.grad(loss, delta)
        g = g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        if t < steps - 1:  # the noise weight (T−1−t)/T is 0 at the last step
            g = g + torch.randn(g.shape, generator=generator) * (steps - 1 - t) / steps
        delta = (delta.detach() - step_size * g.sign()).clamp(-eps, eps)
        delta = (images + delta).clamp(0, 255) - images
    return images + delta


@pytest.mark.parametrize('step_size', [255.0, 1.5])
def test_purifier_is_algorithm_1(step_size):
    feature_fn, _ = small_net()
    images = images_like(2, 14, 18, 0)
    out = EquivariancePurifier(FAST_VIEWS, eps=6.0, steps=4, step_size=step_size).purify(
        images, feature_fn, torch.Generator().manual_seed(0))
    expected = algorithm_1(images, feature_fn, FAST_VIEWS, 6.0, 4, step_size, torch.Generator().manual_seed(0))
    assert torch.allclose(out, expected, atol=1e-4)


@pytest.mark.parametrize('grad_per_view', [True, False])
def test_every_iterate_stays_in_the_range_and_off_the_padding(monkeypatch, grad_per_view):
    import mmequi.equivariance.objectives as purifier_module
    seen = []

    def spy(function):
        def spied(feature_fn, images, *args, **kwargs):
            seen.append(images.detach().clone())
            return function(feature_fn, images, *args, **kwargs)
        return spied

    for name in ('compute_equivariance_score', 'equivariance_score_and_gradient'):
        monkeypatch.setattr(purifier_module, name, spy(getattr(purifier_module, name)))
    feature_fn, _ = small_net()
    images = images_like(1, 15, 13, 0)
    valid = padding_mask(1, 15, 13, 3, 2)
    EquivariancePurifier(FAST_VIEWS, eps=6.0, steps=3, grad_per_view=grad_per_view).purify(
        images, feature_fn, torch.Generator(), valid)
    assert len(seen) == 3
    for iterate in seen:
        assert torch.equal(iterate[valid.expand_as(iterate) == 0], images[valid.expand_as(iterate) == 0])
        assert iterate.min() >= 0 and iterate.max() <= 255 and (iterate - images).abs().max() <= 6 + 1e-4


def test_linf_steps_land_on_the_box_corners():
    # η = 255 (the reference's η = 1 in [0, 1] units): every valid pixel away from the range ends is moved by ±ε_v.
    feature_fn, _ = small_net()
    images = 50 + torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 150
    out = EquivariancePurifier(FAST_VIEWS, eps=6.0, steps=3).purify(images, feature_fn, torch.Generator())
    assert torch.allclose((out - images).abs(), torch.full_like(images, 6.0), atol=1e-4)


def test_l2_variant_renormalises_onto_the_ball():
    feature_fn, _ = small_net()
    images = 50 + torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 150
    out = EquivariancePurifier(FAST_VIEWS, eps=100.0, steps=3, norm='l2').purify(images, feature_fn, torch.Generator())
    assert torch.allclose((out - images).flatten(1).norm(dim=1), torch.full((2,), 100.0), atol=1e-2)


def test_model_is_untouched_and_no_gradients_are_left_behind():
    feature_fn, net = small_net()
    before = copy.deepcopy(net.state_dict())
    images = images_like(2, 16, 20, 0).requires_grad_(False)
    with torch.no_grad():  # as mmengine's TestLoop calls it
        out = EquivariancePurifier(FAST_VIEWS, steps=2).purify(images, feature_fn, torch.Generator().manual_seed(0))
    assert not torch.equal(out, images)
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not net.training


def test_purification_restores_the_equivariance_an_attack_removed():
    feature_fn, _ = small_net()
    views = [HFlip(), Rotate(15), Resize(2.0), Resize(0.5)]
    clean = images_like(1, 32, 32, 0)

    def mean_score(images):  # averaged over fixed view draws, so the comparison is not luck of the draw
        return torch.stack([compute_equivariance_score(feature_fn, images, views, torch.Generator().manual_seed(s))
                            for s in range(4)]).mean().item()

    def minus_score(images):
        return -compute_equivariance_score(feature_fn, images, views, torch.Generator().manual_seed(0))

    attacked = PGD(eps=8, step_size=2, steps=10).perturb(clean, minus_score, torch.Generator().manual_seed(0))
    purifier = EquivariancePurifier(views, eps=12.0, steps=20)
    with torch.no_grad():
        purified = purifier.purify(attacked, feature_fn, torch.Generator().manual_seed(1))
    assert mean_score(attacked) < mean_score(clean) - 0.1
    assert mean_score(purified) > mean_score(attacked) + 0.1
    with torch.no_grad():  # the reporting score of the defense agrees
        assert EquivarianceScorer(views)(purified, feature_fn, torch.Generator().manual_seed(2)).shape == (1,)


def test_same_seed_same_output_and_different_seed_different_output():
    feature_fn, _ = small_net()
    images = images_like(2, 15, 17, 0)
    purifier = EquivariancePurifier(FAST_VIEWS, steps=2)
    runs = [purifier.purify(images, feature_fn, torch.Generator().manual_seed(s)) for s in (3, 3, 4)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_noise_is_annealed_to_zero_at_the_last_step():
    # With T = 1 the only step has noise weight (T−1−0)/T = 0: noise on or off gives the same result.
    feature_fn, _ = small_net()
    images = images_like(1, 16, 16, 0)
    outs = [EquivariancePurifier(FAST_VIEWS, steps=1, noise=noise).purify(images, feature_fn,
                                                                           torch.Generator().manual_seed(0))
            for noise in (True, False)]
    assert torch.equal(outs[0], outs[1])
    outs = [EquivariancePurifier(FAST_VIEWS, steps=2, noise=noise).purify(images, feature_fn,
                                                                           torch.Generator().manual_seed(0))
            for noise in (True, False)]
    assert not torch.equal(outs[0], outs[1])


def test_multi_level_features():
    feature_fn, _ = small_net()
    images = images_like(1, 16, 16, 0)

    def levels(x):
        f = feature_fn(x)
        return (f, nn.functional.avg_pool2d(f, 2))

    out = EquivariancePurifier(FAST_VIEWS, steps=2).purify(images, levels, torch.Generator().manual_seed(0))
    assert (out - images).abs().max() <= 6 + 1e-4 and not torch.equal(out, images)


def test_zero_budget_or_zero_steps_return_the_input():
    feature_fn, _ = small_net()
    images = images_like(1, 12, 12, 0)
    for purifier in (EquivariancePurifier(FAST_VIEWS, eps=0), EquivariancePurifier(FAST_VIEWS, steps=0),
                     RandomNoiseDefense(eps=0)):
        assert torch.equal(purifier.purify(images, feature_fn, torch.Generator()), images)


def test_random_noise_defense_stays_in_the_box():
    images = images_like(2, 13, 11, 0)
    valid = padding_mask(2, 13, 11, 3, 2)
    defense = RandomNoiseDefense(eps=6.0)
    out = defense.purify(images, None, torch.Generator().manual_seed(0), valid_mask=valid)
    delta = out - images
    assert delta.abs().max() <= 6 + 1e-4 and delta.abs().max() > 3 and out.min() >= 0 and out.max() <= 255
    assert torch.equal(out[valid.expand_as(out) == 0], images[valid.expand_as(out) == 0])
    assert torch.equal(out, defense.purify(images, None, torch.Generator().manual_seed(0), valid_mask=valid))
    l2 = RandomNoiseDefense(eps=50.0, norm='l2').purify(images, None, torch.Generator().manual_seed(0))
    assert ((l2 - images).flatten(1).norm(dim=1) <= 50 + 1e-3).all()


def test_build_from_config_and_reference_views():
    purifier = DEFENSES.build(dict(type='EquivariancePurifier', num_views=6, eps=9.0, steps=5))
    assert len(purifier.objective.transforms) == 6 and purifier.eps == 9.0 and purifier.steps == 5
    assert len(EquivariancePurifier().objective.transforms) == 8
    assert EquivariancePurifier().step_size == 255.0 and EquivariancePurifier().eps == 6.0
    custom = DEFENSES.build(dict(type='EquivariancePurifier', transforms=[dict(type='HFlip')]))
    assert isinstance(custom.objective.transforms[0], HFlip)
    assert isinstance(DEFENSES.build(dict(type='RandomNoiseDefense', eps=3.0)), RandomNoiseDefense)


def test_roles_are_siblings():
    # A defense is no attack, and a baseline is a defense with another objective, not an equivariance purifier.
    for name, cls in DEFENSES.module_dict.items():
        assert issubclass(cls, Defense) and not issubclass(cls, Attack), name
        assert cls is EquivariancePurifier or not issubclass(cls, EquivariancePurifier), name
    assert set(DEFENSES.module_dict) >= {'EquivariancePurifier', 'InvariancePurifier', 'RandomNoiseDefense',
                                         'RotationPurifier'}


@pytest.mark.parametrize('kwargs, match', [
    (dict(eps=-1.0), 'eps'),
    (dict(steps=-1), 'steps'),
    (dict(step_size=0.0), 'step_size'),
    (dict(norm='l1'), 'norm'),
    (dict(num_views=9), 'num_views'),
    (dict(num_views=0), 'num_views'),
    (dict(transforms=[]), 'at least one transform'),
    (dict(transforms=[dict(type='Twist')]), 'unknown equivariance transform type'),
    (dict(pixel_range=(255.0, 0.0)), 'pixel_range'),
    (dict(gate=1.5), 'gate must be None or an equivariance score in'),
])
def test_bad_configuration_raises_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EquivariancePurifier(**kwargs)


def test_bad_call_raises_value_error():
    feature_fn, _ = small_net()
    purifier = EquivariancePurifier(FAST_VIEWS, steps=1)
    images = images_like(1, 12, 12, 0)
    with pytest.raises(ValueError, match='feature_fn'):
        purifier.purify(images, None)
    with pytest.raises(ValueError, match='valid_mask'):
        purifier.purify(images, feature_fn, valid_mask=torch.ones(1, 1, 12, 11))
    with pytest.raises(ValueError, match='generator'):
        purifier.purify(images, feature_fn, generator=0)
    with pytest.raises(ValueError, match='B×C×H×W'):
        purifier.purify(images[0], feature_fn)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_run_matches_cpu_run():
    feature_fn, net = small_net()
    images = images_like(2, 24, 24, 0)
    purifier = EquivariancePurifier(eps=6.0, steps=3, noise=False)
    out_cpu = purifier.purify(images, feature_fn, torch.Generator().manual_seed(0))
    net.cuda()
    out_gpu = purifier.purify(images.cuda(), feature_fn, torch.Generator().manual_seed(0))
    assert out_gpu.is_cuda
    assert ((out_gpu.cpu() - out_cpu).abs() > 1e-3).float().mean() < 0.01  # sign flips only where grad ≈ 0


def test_unrolled_purifier_keeps_second_order_terms():
    """Through the unrolled L2 purifier the input's gradient is not the identity's: every step's direction depends on
    the input (dropping create_graph would make it exactly the identity away from the bounds)."""
    feature_fn, _ = small_net()
    images = (100 + torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 50).requires_grad_(True)
    weights = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    purifier = EquivariancePurifier(FAST_VIEWS, eps=30.0, steps=3, step_size=10.0, norm='l2', noise=False,
                                    random_start=False)
    with torch.enable_grad():
        grad, = torch.autograd.grad((purifier.purify_unrolled(images, feature_fn, torch.Generator()) * weights).sum(),
                                    images)
    assert (grad - weights).abs().max() > 1e-2 * weights.abs().max()


@pytest.mark.parametrize('pooled', [False, True])
def test_view_by_view_gradient_equals_autograd_through_all_views(pooled):
    """The exact memory lever: one view's graph at a time gives the gradient of the whole score."""
    from mmequi.equivariance.loss import equivariance_score_and_gradient
    feature_fn, _ = small_net()

    def two_levels(x):  # multi-level features, as FPN necks give
        f = feature_fn(x)
        return [f, f[..., ::2, ::2] * 2]

    views = [HFlip(), Rotate(15), Resize(2.0), Resize(0.5)]
    images = images_like(2, 20, 24, 0).requires_grad_(True)
    with torch.enable_grad():
        score = compute_equivariance_score(two_levels, images, views, torch.Generator().manual_seed(4), align(pooled))
        expected, = torch.autograd.grad(score.sum(), images)
    value, grad = equivariance_score_and_gradient(two_levels, images, views, torch.Generator().manual_seed(4),
                                                  align(pooled))
    assert torch.allclose(value, score.detach(), atol=1e-5)
    assert (grad - expected).abs().max() <= 1e-4 * expected.abs().max()


def test_view_by_view_purification_equals_the_plain_loop():
    feature_fn, _ = small_net()
    images = images_like(2, 16, 20, 0)
    runs = [EquivariancePurifier(FAST_VIEWS, steps=3, grad_per_view=per_view).purify(
        images, feature_fn, torch.Generator().manual_seed(0)) for per_view in (True, False)]
    assert ((runs[0] - runs[1]).abs() > 1e-3).float().mean() < 0.01  # sign flips only where the gradient ≈ 0


def test_views_per_step_and_view_cap():
    feature_fn, _ = small_net()
    sizes = []

    def spy(x):
        sizes.append(tuple(x.shape[-2:]))
        return feature_fn(x)

    images = images_like(1, 20, 30, 0)
    purifier = EquivariancePurifier([HFlip(), Resize(2.0, aspect_jitter=None), Resize(0.5)], steps=2,
                                    views_per_step=1, max_view_area=1.5, grad_per_view=False)
    out = purifier.purify(images, spy, torch.Generator().manual_seed(0))
    assert len(sizes) == 2 * 2  # the identity and one of the three views at each of the two steps
    assert max(h * w for h, w in sizes) <= 1.5 * 20 * 30 < 40 * 60 and (out - images).abs().max() <= 6 + 1e-4


@pytest.mark.parametrize('kwargs, match', [
    (dict(views_per_step=0), 'views_per_step'), (dict(views_per_step=9), 'views_per_step'),
    (dict(max_view_area=0), 'max_view_area'), (dict(max_view_area=-1.0), 'max_view_area'),
    (dict(max_view_area='1'), 'max_view_area'),
    (dict(autocast='int8'), 'autocast'),
])
def test_bad_lever_settings_name_the_option(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EquivariancePurifier(**kwargs)


def test_autocast_fp16_needs_cuda_and_bf16_runs_on_cpu():
    feature_fn, _ = small_net()
    images = images_like(1, 16, 16, 0)
    with pytest.raises(ValueError, match="autocast='fp16' needs a CUDA device"):
        EquivariancePurifier(FAST_VIEWS, steps=1, autocast='fp16').purify(images, feature_fn, torch.Generator())
    out = EquivariancePurifier(FAST_VIEWS, steps=1, autocast='bf16').purify(images, feature_fn, torch.Generator())
    assert out.dtype == images.dtype and (out - images).abs().max() <= 6 + 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_view_by_view_equals_the_plain_loop():
    feature_fn, net = small_net()
    net.cuda()
    images = images_like(2, 24, 24, 0).cuda()
    runs = [EquivariancePurifier(eps=6.0, steps=3, noise=False, grad_per_view=per_view).purify(
        images, feature_fn, torch.Generator().manual_seed(0)) for per_view in (True, False)]
    assert ((runs[0] - runs[1]).abs() > 1e-3).float().mean() < 0.01


def test_grad_per_view_auto_is_per_view_on_large_images_or_cuda_only():
    from mmequi.defenses.base import ObjectiveAscent
    ascent = ObjectiveAscent(EquivariancePurifier(FAST_VIEWS), lambda x: x, None)
    assert not ascent.per_view(torch.empty(1, 3, 512, 1024))  # CPU, 0.5 MP: every graph at once (faster here)
    assert ascent.per_view(torch.empty(1, 3, 1024, 2048))  # CPU, 2 MP: one view's graph at a time
    forced = ObjectiveAscent(EquivariancePurifier(FAST_VIEWS, grad_per_view=True), lambda x: x, None)
    assert forced.per_view(torch.empty(1, 3, 8, 8))
    assert not ObjectiveAscent(RandomNoiseDefense(), None, None).per_view(torch.empty(1, 3, 4096, 4096))
    with pytest.raises(ValueError, match='grad_per_view'):
        EquivariancePurifier(grad_per_view='yes')


@pytest.mark.parametrize('pooled', [False, True])
def test_batched_views_equal_one_call_per_view(pooled):
    """The batching lever is exact: views of the image's own size (identity, flip, rotations) share one call."""
    feature_fn, _ = small_net()
    calls = []

    def spy(x):
        calls.append(x.shape[0])
        return feature_fn(x)

    views = [HFlip(), Rotate(15), Rotate(10), Resize(0.5)]
    images = images_like(2, 18, 22, 0)
    one_by_one = compute_equivariance_score(spy, images, views, torch.Generator().manual_seed(1), align(pooled))
    separate_calls, calls[:] = len(calls), []
    together = compute_equivariance_score(spy, images, views, torch.Generator().manual_seed(1), align(pooled),
                                          batch_views=True)
    assert torch.allclose(one_by_one, together, atol=1e-5)
    assert len(calls) < separate_calls and max(calls) == 2 * 4  # 2 images × (identity, flip, 2 rotations)
    runs = [EquivariancePurifier(views, steps=2, batch_views=batch, grad_per_view=per_view).purify(
        images, feature_fn, torch.Generator().manual_seed(0)) for batch, per_view in
        ((False, False), (True, False), (True, True))]
    for run in runs[1:]:
        assert ((run - runs[0]).abs() > 1e-3).float().mean() < 0.01


def test_gate_purifies_only_the_images_scoring_below_it(monkeypatch):
    """gate=0.7 with scores (0.5, 0.9): the first image is purified exactly as alone without a gate, the second comes
    back untouched; a gate above every score purifies all, one below every score none."""
    feature_fn, _ = small_net()
    images = images_like(2, 12, 12, 0)
    gated = EquivariancePurifier(num_views=1, eps=6, steps=2, gate=0.7)
    monkeypatch.setattr(gated, '_scorer', lambda x, f, g: torch.tensor([0.5, 0.9]))
    out = gated.purify(images, feature_fn, torch.Generator().manual_seed(1))
    alone = EquivariancePurifier(num_views=1, eps=6, steps=2).purify(images[:1], feature_fn,
                                                                     torch.Generator().manual_seed(1))
    assert torch.equal(out[0], alone[0]) and torch.equal(out[1], images[1])
    for gate, changed in ((1.0, [True, True]), (-1.0, [False, False])):
        out = EquivariancePurifier(num_views=1, eps=6, steps=2, gate=gate).purify(images, feature_fn, seeded(2))
        assert [not torch.equal(o, i) for o, i in zip(out, images)] == changed
