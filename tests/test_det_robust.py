"""DetRobustModel on the demo Faster R-CNN (committed checkpoint) with samples from mmdet's own CocoDataset and
test pipeline: bounds, deterministic detection loss in eval mode, DAG, FPN feature levels, batch independence."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmdet.registry import MODELS as DET_MODELS

import mmequi  # noqa: F401
from mmequi.attacks.dag import dag_margin, dag_targets
from mmequi.models import DetRobustModel, robust_model_for

FAST_ATTACK = dict(type='PGD', eps=4, step_size=1, steps=2)
FAST_DEFENSE = dict(type='EquivariancePurifier', num_views=2, eps=6, steps=2)


@pytest.fixture
def setup(demo_detector):
    return demo_detector


def data_batch(items):
    return pseudo_collate(copy.deepcopy(items))


def first_objective(wrapper, items):
    """(task objective, clean 1×C×H×W pixels) of the first test image."""
    item = data_batch(items[:1])
    return wrapper.task_objective(item['data_samples'][0]), wrapper.to_pixels(item['inputs'][0])


def test_robust_model_for_picks_the_det_wrapper(setup):
    assert robust_model_for(setup[0]) is DetRobustModel
    assert DetRobustModel(setup[0]).feature == 'neck.0'  # the finest FPN level by default


def test_attack_and_defense_bounds_model_untouched(setup):
    model, items = setup
    state = copy.deepcopy(model.state_dict())
    wrapper = DetRobustModel(model, attack=FAST_ATTACK, defense=FAST_DEFENSE, keep_images=True)
    with torch.no_grad():
        results = wrapper.test_step(data_batch(items[:2]))
    for item, result in zip(items, results):
        clean = item['inputs'].float()
        images = {k: v.float() for k, v in result.robust_images.items()}
        assert 0 < (images['attacked'] - clean).abs().max() <= 4
        assert (images['purified'] - images['attacked']).abs().max() <= 6
        assert 'pred_instances' in result and set(result.equivariance_scores) == {'clean', 'attacked', 'purified'}
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert all(p.grad is None for p in model.parameters())


def test_detection_loss_is_deterministic_and_rises_under_attack(setup):
    model, items = setup
    wrapper = DetRobustModel(model, attack=dict(type='PGD', eps=8, step_size=2, steps=3), score=False)
    objective, clean = first_objective(wrapper, items)
    with torch.no_grad():
        first, second = objective(clean), objective(clean)
    assert torch.equal(first, second)  # RoI sampling seeded: the same loss every call
    adv = wrapper.attack.perturb(clean, objective, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert objective(adv) > first


def test_gt_boxes_are_moved_to_network_input_coordinates(setup):
    model, items = setup
    sample = data_batch(items[:1])['data_samples'][0]
    objective = DetRobustModel(model).task_objective(sample)
    sx, sy = sample.metainfo['scale_factor']
    expected = sample.gt_instances.bboxes.tensor * torch.tensor([sx, sy, sx, sy])
    assert torch.allclose(objective.target.gt_instances.bboxes.tensor, expected)


def test_dag_attack_lowers_the_margin_of_true_classes(setup):
    model, items = setup
    wrapper = DetRobustModel(model, attack=dict(type='DAG', eps=4, step_size=1, steps=3), score=False)
    objective, clean = first_objective(wrapper, items)
    targets = dag_targets(objective, clean, torch.Generator().manual_seed(0))
    assert len(targets[0]) > 0  # the trained detector has proposals on the objects
    with torch.no_grad():
        before = dag_margin(objective, clean, targets)
    assert before < 0  # the trained detector scores the true class above the adversarial one: the margin is negative
    adv = wrapper.attack.perturb(clean, objective, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert dag_margin(objective, adv, targets) > before


def test_batch_equals_single_images(setup):
    model, items = setup
    wrapper = DetRobustModel(model, attack=FAST_ATTACK, defense=FAST_DEFENSE, keep_images=True)
    together = wrapper.test_step(data_batch(items[:2]))
    for i in range(2):
        alone = wrapper.test_step(data_batch(items[i:i + 1]))[0]
        assert torch.equal(together[i].robust_images['purified'], alone.robust_images['purified'])
        assert torch.equal(together[i].pred_instances.bboxes, alone.pred_instances.bboxes)


@pytest.mark.parametrize('feature, levels', [('neck', 5), ('neck.0', 1), ('neck.0,2', 2), ('backbone', 4),
                                             ('backbone.2', 1)])
def test_feature_levels(setup, feature, levels):
    wrapper = DetRobustModel(setup[0], feature=feature)
    out = wrapper.feature_fn(torch.rand(1, 3, 64, 96) * 255)
    out = out if isinstance(out, list) else [out]
    assert len(out) == levels
    if feature == 'neck':
        assert [f.shape[-1] for f in out] == [24, 12, 6, 3, 2]  # strides 4..64


def test_missing_annotations_and_bad_feature(setup):
    model, items = setup
    item = data_batch(items[:1])
    del item['data_samples'][0].gt_instances
    with pytest.raises(ValueError, match='gt_instances'):
        DetRobustModel(model, attack=FAST_ATTACK).test_step(item)
    with pytest.raises(ValueError, match="unknown feature 'logits'"):
        DetRobustModel(model, feature='logits')


@pytest.mark.parametrize('base', ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
                                  'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'])
def test_one_stage_detectors(setup, base, tmp_path):
    """The wrapper is not tied to two-stage detectors: RetinaNet and FCOS (random weights) under PGD on their own
    loss, purified on their FPN outputs."""
    (tmp_path / 'one_stage.py').write_text(f'_base_ = [{base!r}]\n')
    cfg = Config.fromfile(str(tmp_path / 'one_stage.py'))
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        model = DET_MODELS.build(cfg.model).eval()
    wrapper = DetRobustModel(model, attack=FAST_ATTACK, defense=FAST_DEFENSE, feature='neck', keep_images=True)
    with torch.no_grad():
        (result, ) = wrapper.test_step(data_batch(setup[1][:1]))
    clean = setup[1][0]['inputs'].float()
    assert 0 < (result.robust_images['attacked'].float() - clean).abs().max() <= 4
    assert len(wrapper.feature_fn(clean[None])) == 5 and 'pred_instances' in result
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize('attack', [
    dict(type='EquivarianceAwarePGD', lam=1.0, eps=4, step_size=1, steps=1),
    dict(type='BPDA', eot=2, eps=4, step_size=1, steps=1),
    dict(type='FullGradientPGD', eps=4, step_size=1, steps=1),
])
def test_adaptive_attacks_run_against_the_defended_detector(setup, attack):
    """The adaptive attacks differentiate the detector's own loss through (or around) the purifier on neck.0."""
    model, items = setup
    wrapper = DetRobustModel(model, attack=attack, defense=dict(FAST_DEFENSE, steps=1), score=False,
                             keep_images=True)
    with torch.no_grad():
        (result, ) = wrapper.test_step(data_batch(items[:1]))
    clean = items[0]['inputs'].float()
    attacked = result.robust_images['attacked'].float()
    assert 0 < (attacked - clean).abs().max() <= 4
    assert 'pred_instances' in result
