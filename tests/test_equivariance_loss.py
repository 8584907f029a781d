"""The equivariance score of docs/method.md, Eq. 2."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mmequi.equivariance import (EquivarianceScorer, EquiTransform, HFlip, Identity, Resize, Rotate,
                                 compute_equivariance_score, equivariance_score, reference_transforms, view_features)



class PointwiseNet(nn.Module):
    """1×1 convolutions only: commutes exactly with flips and with identity-like views. Two output levels."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.trunk = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Sigmoid(), nn.Conv2d(8, 8, 1), nn.Sigmoid())
        self.head_a, self.head_b = nn.Conv2d(8, 5, 1), nn.Conv2d(8, 3, 1)

    def forward(self, x):
        x = self.trunk(x / 255)
        return [self.head_a(x), self.head_b(x)]


def conv_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 1, 1), nn.ReLU(),
                         nn.Conv2d(8, 5, 3, 1, 1)).eval()


# Views on which a pointwise net is exactly equivariant: flips, a resize to the same size, a 0° rotation.
EXACT_VIEWS = [HFlip(), Identity(), Resize(1.0, aspect_jitter=None), Rotate(0), dict(type='Compose', transforms=[
    dict(type='HFlip'), dict(type='HFlip')])]


@settings(max_examples=20, deadline=None, derandomize=True)
@given(batch=st.integers(1, 2), height=st.integers(3, 21), width=st.integers(3, 21), seed=st.integers(0, 10_000),
       scale=st.sampled_from([0.0, 1.0, 255.0]))
def test_exactly_equivariant_model_scores_the_maximum(batch, height, width, seed, scale):
    images = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed)) * scale
    with torch.no_grad():
        score = compute_equivariance_score(PointwiseNet(), images, EXACT_VIEWS, torch.Generator().manual_seed(seed))
    pairs = 6 * 5 // 2
    assert score.shape == (batch,)
    assert torch.allclose(score, torch.full((batch,), 2.0 * pairs), atol=1e-4)  # pairs × 2 levels


def test_random_conv_net_scores_below_the_maximum():
    images = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        score = compute_equivariance_score(conv_net(), images, reference_transforms(4),
                                           torch.Generator().manual_seed(0))
    assert (score > 0).all() and (score < 10 - 0.5).all()  # 5 views, 10 pairs


def test_mean_reduction_is_the_mean_cosine_over_pairs_and_levels():
    f = torch.randn(3, 4, 5, 6)
    g = torch.randn(3, 4, 5, 6)
    two_levels = [[f, f[:, :2, :2]], [g, g[:, :2, :2]], [f, -f[:, :2, :2]]]  # 3 pairs × 2 levels
    summed = equivariance_score(two_levels)
    assert torch.allclose(equivariance_score(two_levels, reduction='mean'), summed / 6)
    assert torch.allclose(equivariance_score([f] * 9, reduction='mean'), torch.ones(3))  # K = 8: 1, not 36
    assert torch.allclose(equivariance_score([f, -f], reduction='mean'), -torch.ones(3))
    with pytest.raises(ValueError, match="reduction must be 'sum' or 'mean'"):
        equivariance_score([f, f], reduction='avg')


def test_reported_score_is_comparable_across_k():
    """EquivarianceScorer: in [−1, 1], 1 for features that are exactly equivariant under the views, whatever K."""
    images = torch.rand(2, 3, 16, 16) * 255
    for k in (1, 2, 4):
        scores = EquivarianceScorer(EXACT_VIEWS[:k])(images, PointwiseNet(), torch.Generator().manual_seed(0))
        assert torch.allclose(scores, torch.ones(2), atol=1e-5), k
    scores = EquivarianceScorer(num_views=8)(images, conv_net(), torch.Generator().manual_seed(0))
    summed = compute_equivariance_score(conv_net(), images, reference_transforms(8), torch.Generator().manual_seed(0))
    assert torch.allclose(scores, summed / 36, atol=1e-6) and (scores.abs() <= 1).all()


def test_score_sums_cosines_over_all_pairs_and_levels():
    f = torch.randn(3, 4, 5, 6)
    assert torch.allclose(equivariance_score([f, f, f]), torch.full((3,), 3.0))
    assert torch.allclose(equivariance_score([[f, f[:, :2, :2]]] * 4), torch.full((3,), 12.0))
    assert torch.allclose(equivariance_score([f, -f]), torch.full((3,), -1.0))
    assert torch.allclose(equivariance_score([f, 2 * f]), torch.full((3,), 1.0))  # scale-free
    # Per image: images are independent.
    g = f.clone()
    g[0] = torch.randn(4, 5, 6)
    score = equivariance_score([f, g])
    assert score[0] < 0.9 and torch.allclose(score[1:], torch.ones(2))


def test_masks_restrict_each_pair_to_locations_valid_in_both_views():
    f = torch.randn(2, 4, 8, 8)
    garbage = f.clone()
    garbage[..., :2, :] = torch.randn(2, 4, 2, 8) * 10
    mask = torch.ones(2, 1, 8, 8)
    mask[..., :2, :] = 0
    assert equivariance_score([f, garbage]).max() < 0.9
    full = torch.ones_like(mask)
    assert torch.allclose(equivariance_score([f, garbage], [full, mask]), torch.ones(2))  # one mask is enough
    assert torch.allclose(equivariance_score([f, garbage], [mask, full]), torch.ones(2))


def test_rotated_corners_are_masked_in_the_views():
    def offset(x):  # empty (zero-filled) corners of a rotated image still give features: the offset
        return x + 100.0
    images = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(0)) * 255
    views, masks = view_features(offset, images, [Rotate(15)], torch.Generator().manual_seed(3))
    assert len(views) == 2 and views[1][0].shape == (1, 3, 24, 32)
    mask = masks[1][0]
    assert mask[..., 0, 0] == 0 and mask[..., -1, -1] == 0 and mask[..., 12, 16] == 1
    assert masks[0][0].eq(1).all()  # identity view
    assert equivariance_score(views, masks) > equivariance_score(views)


def test_score_is_differentiable_with_respect_to_the_input():
    images = (torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0)) * 255).requires_grad_(True)
    score = compute_equivariance_score(conv_net(), images, reference_transforms(8), torch.Generator().manual_seed(0))
    grad, = torch.autograd.grad(score.sum(), images)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


class FlipNotUndone(EquiTransform):
    """A transform whose inverse forgets to undo it: features are misaligned, but their pooled values agree."""

    def apply(self, images, params):
        return images.flip(-1)


def test_pooled_invariance_baseline_ignores_the_spatial_layout():
    from mmequi.equivariance.objectives import pooled as pooled_view
    images = torch.rand(2, 3, 10, 12, generator=torch.Generator().manual_seed(0)) * 255
    views, masks = view_features(lambda x: x, images, [FlipNotUndone()], align=pooled_view)
    assert views[1][0].shape == (2, 3, 1, 1) and masks[1][0].shape == (2, 1, 1, 1)
    pooled = compute_equivariance_score(lambda x: x, images, [FlipNotUndone()], align=pooled_view)
    dense = compute_equivariance_score(lambda x: x, images, [FlipNotUndone()])
    assert torch.allclose(pooled, torch.ones(2)) and (dense < 0.95).all()


def test_the_invariance_objective_pools_and_the_equivariance_objective_inverts():
    """Each objective owns how its views are compared: the baseline's pooling lives in InvarianceObjective."""
    from mmequi.equivariance import EquivarianceObjective, InvarianceObjective
    images = torch.rand(2, 3, 10, 12, generator=torch.Generator().manual_seed(0)) * 255
    pooled = InvarianceObjective([FlipNotUndone()])(images, lambda x: x)
    dense = EquivarianceObjective([FlipNotUndone()])(images, lambda x: x)
    assert torch.allclose(pooled, torch.ones(2)) and (dense < 0.95).all()
    assert torch.allclose(InvarianceObjective([FlipNotUndone()]).gradient(images, lambda x: x ** 2),
                          torch.autograd.functional.jacobian(
                              lambda x: InvarianceObjective([FlipNotUndone()])(x, lambda y: y ** 2).sum(), images),
                          atol=1e-6)


def test_each_image_draws_its_own_view_parameters():
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 255
    views, _ = view_features(lambda x: x, image.expand(2, -1, -1, -1), [Rotate(15)], torch.Generator().manual_seed(0))
    assert not torch.allclose(views[1][0][0], views[1][0][1])
    assert torch.equal(views[0][0][0], views[0][0][1])


def test_same_generator_seed_gives_the_same_score():
    images = torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(0)) * 255
    scores = [compute_equivariance_score(conv_net(), images, reference_transforms(8), torch.Generator().manual_seed(s))
              for s in (5, 5, 6)]
    assert torch.equal(scores[0], scores[1]) and not torch.equal(scores[0], scores[2])


@pytest.mark.parametrize('views, masks, match', [
    ([torch.randn(1, 2, 3, 3)], None, 'at least 2 views'),
    ([torch.randn(1, 2, 3, 3), torch.randn(1, 2, 3, 4)], None, 'feature shape mismatch'),
    ([torch.randn(1, 2, 3, 3), torch.randn(1, 3, 3, 3)], None, 'feature shape mismatch'),
    ([[torch.randn(1, 2, 3, 3)] * 2, [torch.randn(1, 2, 3, 3)]], None, 'levels'),
    ([torch.randn(1, 2, 3, 3)] * 2, [torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 4)], 'mask'),
    ([torch.randn(1, 2, 3, 3)] * 2, [torch.ones(1, 1, 3, 3)], 'one entry per view'),
    ([torch.randn(2, 3)] * 2, None, 'B×C×h×w'),
])
def test_bad_views_raise_value_error(views, masks, match):
    with pytest.raises(ValueError, match=match):
        equivariance_score(views, masks)


def test_bad_feature_fn_output_raises_value_error():
    images = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match='feature_fn output'):
        view_features(lambda x: x.mean(), images, [HFlip()])
    levels = iter([[images, images], [images]])
    with pytest.raises(ValueError, match='levels'):
        view_features(lambda x: next(levels), images, [HFlip()])
    with pytest.raises(ValueError, match='unknown equivariance transform type'):
        view_features(lambda x: x, images, [dict(type='Spin')])
    with pytest.raises(ValueError, match='B×C×H×W'):
        view_features(lambda x: x, images[0], [HFlip()])
