"""The rotation self-supervision baseline: head, loss, purifier, its training tool and the wrapper's feature choice."""
import pytest
import torch
from conftest import ROTATION_HEAD as DEMO_HEAD
from conftest import SEG_CHECKPOINT as DEMO_CHECKPOINT
from conftest import SEG_CONFIG as DEMO_CONFIG
from torch import nn

from mmequi.defenses import RotationHead, RotationPurifier, load_rotation_head, rotation_loss, save_rotation_head
from mmequi.defenses.rotation import pool


def small_features(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 6, 3, 1, 1)).eval().requires_grad_(False)
    return lambda x: net(x / 255 - 0.5)


def saved_head(tmp_path, in_channels=6, feature='backbone.-1', seed=0):
    torch.manual_seed(seed)
    path = str(tmp_path / 'head.pth')
    save_rotation_head(path, RotationHead(in_channels, hidden=16), dict(feature=feature))
    return path


def test_head_checkpoint_round_trip_loads_without_unpickling_objects(tmp_path):
    path = saved_head(tmp_path)
    head, meta = load_rotation_head(path)
    assert meta == dict(feature='backbone.-1', in_channels=6, hidden=16)
    assert not any(p.requires_grad for p in head.parameters()) and not head.training
    original = torch.load(path, weights_only=True)['state_dict']
    assert all(torch.equal(original[k], v) for k, v in head.state_dict().items())


def test_a_file_that_is_not_a_head_is_refused_by_name(tmp_path):
    path = str(tmp_path / 'other.pth')
    torch.save(dict(weights=torch.zeros(2)), path)
    with pytest.raises(ValueError, match='not a rotation head checkpoint'):
        load_rotation_head(path)


def test_purifier_without_a_head_says_how_to_get_one():
    with pytest.raises(ValueError, match='train_rotation_head.py'):
        RotationPurifier()


def test_rotation_loss_is_per_image_and_uses_all_four_rotations():
    feature_fn = small_features()
    head = RotationHead(6, hidden=16)
    images = torch.rand(3, 3, 12, 20) * 255
    loss = rotation_loss(head, feature_fn, images)
    assert loss.shape == (3,)
    by_hand = torch.stack([nn.functional.cross_entropy(head(pool(feature_fn(torch.rot90(images[:1], k, (2, 3))))),
                                                       torch.tensor([k])) for k in range(4)]).mean()
    assert torch.allclose(loss[0], by_hand, atol=1e-6)
    assert pool([torch.ones(2, 3, 4, 4), torch.zeros(2, 5, 2, 2)]).shape == (2, 8)  # FPN levels concatenated


def test_purification_lowers_the_rotation_loss_within_the_bounds(tmp_path):
    feature_fn = small_features()
    purifier = RotationPurifier(head=saved_head(tmp_path), eps=6, steps=10, step_size=1, random_start=False,
                                noise=False)
    images = (torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(1)) * 255).round()
    images[..., 0, 0] = 255.0
    purified = purifier.purify(images, feature_fn, torch.Generator().manual_seed(0))
    assert (purified - images).abs().max() <= 6 + 1e-4
    assert purified.min() >= 0 and purified.max() <= 255
    before = rotation_loss(purifier.objective.head, feature_fn, images)
    after = rotation_loss(purifier.objective.head, feature_fn, purified)
    assert (after < before).all()
    assert all(p.grad is None for p in purifier.objective.head.parameters())


def test_unrolled_rotation_purifier_matches_and_passes_gradients(tmp_path):
    feature_fn = small_features()
    purifier = RotationPurifier(head=saved_head(tmp_path), eps=6, steps=3)
    images = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 200 + 20
    plain = purifier.purify(images, feature_fn, torch.Generator().manual_seed(0))
    x = images.clone().requires_grad_(True)
    unrolled = purifier.purify_unrolled(x, feature_fn, torch.Generator().manual_seed(0))
    assert torch.allclose(plain, unrolled.detach(), atol=1e-3)
    grad, = torch.autograd.grad(unrolled.sum(), x)
    assert grad.abs().sum() > 0


@pytest.fixture(scope='module')
def demo_wrapper(demo_segmentor):
    from mmequi.models import SegRobustModel
    return SegRobustModel(demo_segmentor, defense=dict(type='RotationPurifier', head=DEMO_HEAD, steps=2), score=False)


def test_wrapper_purifies_on_the_heads_feature_and_scores_on_its_own(demo_wrapper):
    assert demo_wrapper.feature == 'logits'
    assert demo_wrapper.defense_feature == demo_wrapper.defense.meta['feature'] == 'backbone.-1'
    pixels = torch.rand(1, 3, 64, 128) * 255
    assert demo_wrapper.defense_feature_fn(pixels).shape[1] == demo_wrapper.defense.meta['in_channels']
    assert demo_wrapper.feature_fn(pixels).shape[1] == 19  # the logits


def test_a_defense_feature_the_model_does_not_have_is_refused(tmp_path, demo_wrapper):
    from mmequi.models import SegRobustModel
    head = saved_head(tmp_path, feature='pyramid.2')
    with pytest.raises(ValueError, match="unknown feature 'pyramid.2'"):
        SegRobustModel(demo_wrapper.module, defense=dict(type='RotationPurifier', head=head), score=False)


def test_committed_demo_head_tells_rotations_apart(demo_wrapper):
    """The committed head on synthetic Cityscapes-format images it never saw (seeded, not the generated split):
    well above the 0.25 of chance."""
    from testbed.cityscapes import render_scene
    from tools.train_rotation_head import pooled_rotations
    import numpy as np
    scenes = [render_scene(np.random.default_rng(1000 + i), i, 128, 256)[0] for i in range(3)]  # BGR, as loaded
    images = [torch.from_numpy(np.ascontiguousarray(scene)).permute(2, 0, 1) for scene in scenes]
    pooled, labels = pooled_rotations(demo_wrapper, demo_wrapper.defense_feature, dict(inputs=images))
    accuracy = (demo_wrapper.defense.objective.head(pooled).argmax(1) == labels).float().mean()
    assert accuracy >= 0.5


def test_training_tool_writes_a_head_the_purifier_loads(tmp_path):
    from testbed import generate_cityscapes
    from tools import train_rotation_head
    data_root = str(generate_cityscapes(tmp_path / 'data', num_train=4, num_val=2))
    out = str(tmp_path / 'head.pth')
    options = [f'{split}_dataloader.dataset.data_root={data_root}' for split in ('train', 'test')]
    meta = train_rotation_head.main([DEMO_CONFIG, DEMO_CHECKPOINT, '--out', out, '--iters', '2', '--cfg-options',
                                     *options, 'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
                                     'train_dataloader.persistent_workers=False'])
    assert 0.0 <= meta['test_accuracy'] <= 1.0 and meta['iters'] == 2
    purifier = RotationPurifier(head=out)
    assert purifier.feature == 'backbone.-1' and purifier.meta['command'].startswith('python tools/train_rotation_head')
    assert purifier.meta['checkpoint'] == DEMO_CHECKPOINT
