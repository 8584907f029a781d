"""Transforms that know their inverse: g⁻¹(F(g(x))) realigns features with F(x) (docs/method.md, Eq. 2)."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mmequi.equivariance import (ColorJitter, Compose, EquiTransform, HFlip, Identity, Resize, Rotate, WidthResize,
                                 build_transform, build_transforms, reference_transforms)
from mmequi.equivariance.transforms import rotate
from mmequi.registry import EQUI_TRANSFORMS


SETTINGS = settings(max_examples=20, deadline=None, derandomize=True)


def smooth_images(batch, height, width, seed=0):
    """Low-frequency, left-right and up-down asymmetric images in [0, 255] (so a missing flip or a wrong rotation
    shows), smooth enough that bilinear round trips are close."""
    g = torch.Generator().manual_seed(seed)
    ys = torch.linspace(-1, 1, height).view(1, 1, height, 1)
    xs = torch.linspace(-1, 1, width).view(1, 1, 1, width)
    f = torch.rand(batch, 3, 3, 1, 1, generator=g)
    return 127.5 + 60 * torch.sin(math.pi * (0.5 * f[:, :, 0] * ys + 0.7 * xs + 2 * f[:, :, 1])) \
        + 40 * xs * ys * (0.5 + f[:, :, 2])


def stride4(x):
    """A stand-in for stride-4 features that covers the whole image, as a padded conv net does."""
    return F.adaptive_avg_pool2d(x, (math.ceil(x.shape[-2] / 4), math.ceil(x.shape[-1] / 4)))


def round_trip(transform, images, feature_fn, seed):
    params = transform.sample(torch.Generator().manual_seed(seed))
    reference = feature_fn(images)
    back, mask = transform.invert(feature_fn(transform.apply(images, params)), params, reference.shape[-2:])
    return back, mask, reference


GEOMETRIC = {
    'hflip': HFlip(),
    'resize x2': Resize(2.0),
    'resize x0.5': Resize(0.5),
    'resize x0.3': Resize(0.3),
    'rotate': Rotate(15),
    'width resize': WidthResize(),
    'width resize + flip': Compose([WidthResize(), HFlip()]),
    'flip + rotate': Compose([HFlip(), Rotate(15)]),
    'rotate + resize x0.5': Compose([Rotate(15), Resize(0.5)]),
}


@SETTINGS
@given(name=st.sampled_from(sorted(GEOMETRIC)), batch=st.integers(1, 2), height=st.integers(32, 63),
       width=st.integers(32, 63), seed=st.integers(0, 10_000))
def test_invert_recovers_the_image_at_stride_1(name, batch, height, width, seed):
    images = smooth_images(batch, height, width, seed)
    back, mask, reference = round_trip(GEOMETRIC[name], images, lambda x: x, seed)
    assert back.shape == reference.shape and mask.shape == (batch, 1, height, width)
    assert mask.mean() > 0.75  # rotations by ≤ 15° lose only the corners
    # 2 px inside the mask: on its border, bilinear sampling blends in the zero fill (by up to half).
    inside = 1 - F.max_pool2d(1 - mask, 5, 1, 2)
    assert ((back - reference).abs() * inside).sum() / (3 * inside.sum()) < 6  # of a 255 range


@SETTINGS
@given(name=st.sampled_from(sorted(set(GEOMETRIC) - {'resize x0.3'})), height=st.integers(48, 80),
       width=st.integers(48, 80), seed=st.integers(0, 10_000))
def test_invert_aligns_stride_4_features_approximately(name, height, width, seed):
    back, _, reference = round_trip(GEOMETRIC[name], smooth_images(2, height, width, seed), stride4, seed)
    h, w = reference.shape[-2:]
    centre = (Ellipsis, slice(h // 4, h - h // 4), slice(w // 4, w - w // 4))  # away from zero-filled corners
    assert (back - reference)[centre].abs().mean() < 6


def test_round_trip_tolerance_catches_a_wrong_inverse():
    # The tolerance above is far below what a missing flip or a rotation undone the wrong way costs.
    images = smooth_images(2, 30, 40, seed=1)
    assert (images.flip(-1) - images).abs().mean() > 30
    mask = Rotate().invert(torch.ones(1, 1, 30, 40), {'angle': 15.0}, (30, 40))[1]
    wrong = rotate(rotate(images, 15.0), 15.0)
    assert ((wrong - images).abs() * mask).sum() / (3 * mask.sum()) > 30


def test_rotation_mask_excludes_the_empty_corners():
    features = torch.randn(2, 5, 24, 32)
    back, mask = Rotate().invert(features, {'angle': 15.0}, (12, 16))
    assert back.shape == (2, 5, 12, 16) and mask.shape == (2, 1, 12, 16)
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert mask[:, :, 0, 0].eq(0).all() and mask[:, :, -1, -1].eq(0).all()
    assert mask[:, :, 0, -1].eq(0).all() and mask[:, :, -1, 0].eq(0).all()
    assert mask[:, :, 4:8, 4:12].eq(1).all()
    assert Rotate().invert(features, {'angle': 0.0}, (24, 32))[1].eq(1).all()


def test_rotation_is_a_true_rotation_of_a_non_square_image():
    # A centred round blob stays round (a rotation in normalised coordinates would shear it: error ≈ 67);
    # 90° on a square image is torch.rot90.
    ys, xs = torch.meshgrid(torch.arange(40.) - 19.5, torch.arange(80.) - 39.5, indexing='ij')
    blob = (255 * torch.exp(-(ys ** 2 + xs ** 2) / 128)).expand(1, 3, 40, 80)
    assert (rotate(blob, 30.0) - blob).abs().max() < 15
    square = torch.rand(1, 3, 13, 13) * 255
    assert torch.allclose(rotate(square, 90.0), torch.rot90(square, 1, (2, 3)), atol=1e-3)
    assert torch.allclose(Rotate().apply(square, {'angle': 90.0}), torch.rot90(square, 1, (2, 3)), atol=1e-3)


def test_resize_output_sizes():
    images = torch.rand(2, 3, 10, 20) * 255
    for seed in range(5):
        params = Resize(2.0).sample(torch.Generator().manual_seed(seed))
        assert 0.8 <= params['ratio'] <= 1.2
        assert Resize(2.0).apply(images, params).shape == (2, 3, 20, round(40 * params['ratio']))
    assert WidthResize().apply(images, {'ratio': 1.1}).shape == (2, 3, 10, 22)
    assert Resize(0.3, aspect_jitter=None).apply(torch.rand(1, 3, 5, 7), {'ratio': 1.0}).shape == (1, 3, 8, 8)
    assert Resize(0.5, min_size=2).size_factor({'ratio': 0.9}) == (0.5, 0.45)


def test_hflip_flips_and_identity_keeps():
    images = torch.rand(1, 3, 5, 7)
    assert torch.equal(HFlip().apply(images, {}), images.flip(-1))
    assert torch.equal(Identity().apply(images, {}), images)
    back, mask = Identity().invert(images, {}, (10, 14))
    assert back.shape == (1, 3, 10, 14) and mask.eq(1).all()


def test_compose_applies_in_order_and_inverts_in_reverse():
    images = smooth_images(1, 32, 48, seed=3)
    compose = Compose([dict(type='HFlip'), dict(type='Rotate', max_angle=15)])
    params = compose.sample(torch.Generator().manual_seed(0))
    assert torch.equal(compose.apply(images, params), rotate(images.flip(-1), params['steps'][1]['angle']))
    # The rotation mask is produced in the flipped frame and must be flipped back with the features.
    params, angle = {'steps': [{}, {'angle': 12.0}]}, 12.0
    back, mask = compose.invert(rotate(images.flip(-1), angle), params, (32, 48))
    _, rotate_mask = Rotate().invert(images, {'angle': angle}, (32, 48))
    assert mask.mean() < 0.95 and torch.equal(mask, rotate_mask.flip(-1))
    assert ((back - images).abs() * mask).sum() / (3 * mask.sum()) < 6


def test_color_jitter_is_an_invariance_in_pixel_range():
    images = torch.rand(2, 3, 9, 11, requires_grad=True) * 255
    jitter = ColorJitter()
    for seed in range(10):
        params = jitter.sample(torch.Generator().manual_seed(seed))
        out = jitter.apply(images, params)
        assert out.shape == images.shape and out.min() >= 0 and out.max() <= 255 + 1e-3
        if params['grayscale']:
            assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 1], out[:, 2])
    features = torch.randn(2, 4, 6, 7)
    back, mask = jitter.invert(features, params, (6, 7))
    assert torch.equal(back, features) and mask.eq(1).all()
    neutral = {'brightness': 1.0, 'contrast': 1.0, 'saturation': 1.0, 'hue': 0.0, 'grayscale': False,
               'order': [0, 1, 2, 3]}
    assert torch.allclose(jitter.apply(images, neutral), images, atol=1e-3)
    grad, = torch.autograd.grad(jitter.apply(images, dict(neutral, hue=0.1, saturation=0.5)).sum(), images)
    assert grad.abs().sum() > 0


def test_color_jitter_respects_channel_order():
    # Only the first channel lit: blue in BGR, red in RGB. Saturation 0 leaves the luma of that colour.
    images = torch.zeros(1, 3, 4, 4)
    images[:, 0] = 200.0
    params = {'brightness': 1.0, 'contrast': 1.0, 'saturation': 0.0, 'hue': 0.0, 'grayscale': False, 'order': [2]}
    assert torch.allclose(ColorJitter(channel_order='bgr').apply(images, params), torch.full_like(images, 0.114 * 200))
    assert torch.allclose(ColorJitter(channel_order='rgb').apply(images, params), torch.full_like(images, 0.299 * 200))
    assert torch.allclose(ColorJitter(pixel_range=(0, 1)).apply(images / 255, params),
                          torch.full_like(images, 0.114 * 200 / 255))


@pytest.mark.parametrize('name', sorted(GEOMETRIC) + ['color'])
def test_apply_is_differentiable(name):
    transform = GEOMETRIC.get(name, Compose([ColorJitter(grayscale_p=0), WidthResize()]))
    images = smooth_images(1, 17, 23).requires_grad_(True)
    params = transform.sample(torch.Generator().manual_seed(0))
    grad, = torch.autograd.grad((transform.apply(images, params) ** 2).sum(), images)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_sampling_draws_only_from_the_generator():
    transforms = build_transforms(reference_transforms(8))
    draws = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        g = torch.Generator().manual_seed(7)
        draws.append([t.sample(g) for t in transforms])
    assert draws[0] == draws[1]
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    [t.sample(torch.Generator().manual_seed(7)) for t in transforms]
    assert torch.equal(torch.rand(3), before)  # the global RNG is left alone
    assert draws[0] != [t.sample(torch.Generator().manual_seed(8)) for t in transforms]


def test_reference_transforms_follow_the_table():
    views = reference_transforms()
    assert [v['type'] for v in views] == ['Resize', 'Resize', 'Resize', 'Resize', 'Rotate', 'Rotate', 'Compose',
                                         'Compose']
    assert [v['scale'] for v in views[:4]] == [2.0, 0.3, 2.0, 0.5]
    assert [t['type'] for t in views[6]['transforms']] == ['ColorJitter', 'WidthResize']
    assert [t['type'] for t in views[7]['transforms']] == ['WidthResize', 'HFlip']
    assert reference_transforms(6) == views[:6]
    built = build_transforms(views)
    assert all(isinstance(t, EquiTransform) for t in built)
    assert isinstance(built[7], Compose) and isinstance(built[7].transforms[1], HFlip)
    for bad in (0, 9, 2.5, True, None):
        with pytest.raises(ValueError, match='num_views'):
            reference_transforms(bad)


def test_build_from_dict_configs_and_registry():
    assert isinstance(build_transform(dict(type='Rotate', max_angle=10)), Rotate)
    assert build_transform(dict(type='Rotate', max_angle=10)).max_angle == 10
    assert isinstance(EQUI_TRANSFORMS.build(dict(type='ColorJitter', hue=0.1)), ColorJitter)
    instance = HFlip()
    assert build_transform(instance) is instance
    nested = build_transform(dict(type='Compose', transforms=[dict(type='WidthResize'), instance]))
    assert isinstance(nested.transforms[0], WidthResize) and nested.transforms[1] is instance


@pytest.mark.parametrize('bad, match', [
    (lambda: build_transform(dict(type='Shear')), 'unknown equivariance transform type'),
    (lambda: build_transform(dict(max_angle=3)), "'type'"),
    (lambda: build_transforms(dict(type='HFlip')), 'list'),
    (lambda: Resize(scale=0), 'scale'),
    (lambda: Resize(aspect_jitter=(1.2, 0.8)), 'aspect_jitter'),
    (lambda: Rotate(max_angle=-1), 'max_angle'),
    (lambda: ColorJitter(hue=0.7), 'hue'),
    (lambda: ColorJitter(grayscale_p=2), 'grayscale_p'),
    (lambda: ColorJitter(channel_order='hsv'), 'channel_order'),
    (lambda: ColorJitter().apply(torch.rand(1, 1, 8, 8), ColorJitter().sample()), '3-channel'),
    (lambda: Compose([]), 'at least one'),
])
def test_bad_input_raises_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    images = smooth_images(2, 20, 28)
    for transform in build_transforms(reference_transforms(8)):
        params = transform.sample(torch.Generator().manual_seed(0))
        out_cpu = transform.apply(images, params)
        out_gpu = transform.apply(images.cuda(), params)
        assert torch.allclose(out_cpu, out_gpu.cpu(), atol=1e-2)
        back_cpu, mask_cpu = transform.invert(out_cpu, params, (20, 28))
        back_gpu, mask_gpu = transform.invert(out_gpu, params, (20, 28))
        assert back_gpu.is_cuda and mask_gpu.is_cuda
        assert torch.allclose(back_cpu, back_gpu.cpu(), atol=1e-2)
