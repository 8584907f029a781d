"""One test for each class of small, realistic bug that the rest of the suite let through: each compares values at a
scale where the bug shows (a per-image quantity on two different images, a padded input, two images whose choices
differ, views drawn step by step, a box where the model sees it). ``tools/dev/break_check.py`` applies the bugs and
checks that these tests fail. The loop's L2 geometry and APGD's schedule are checked against torchattacks in
test_reference_attacks.py."""
import copy

import pytest
import torch
from conftest import DET_CONFIG, seeded
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import mmequi  # noqa: F401
from mmequi.attacks import MIM, PGD, AttackContext, EquivarianceAwarePGD, SegEnsemble
from mmequi.attacks.dag import dag_margin, dag_targets
from mmequi.defenses import RandomNoiseDefense
from mmequi.equivariance import ColorJitter, Rotate
from mmequi.evaluation.equivariance_metric import EquivarianceMetric
from mmequi.models import DetRobustModel, SegRobustModel

# ---- the shared loop: the step direction comes from the valid region only -------------------------------------------
@pytest.mark.parametrize('attack', [PGD(eps=100, step_size=3, steps=1, norm='l2', random_start=False),
                                    MIM(eps=100, step_size=3, steps=2, norm='l2', random_start=False)])
def test_the_step_ignores_the_gradient_on_the_padding(attack):
    """The padding gets no step, and its gradient must not shrink the step of the valid pixels: after one L2 step of
    size 3 (two for MIM, in one direction) the valid pixels moved by exactly that much, although the objective's
    gradient is largest on the padding."""
    images = torch.full((2, 3, 6, 8), 100.0)
    valid = torch.zeros(2, 1, 6, 8)
    valid[..., :4, :5] = 1  # the bottom rows and the right columns are padding
    weights = torch.where(valid.bool(), 1.0, 50.0).expand_as(images)
    adv = attack.perturb(images, lambda x: (x * weights).flatten(1).sum(1), seeded(0), valid_mask=valid)
    moved = (adv - images).flatten(1).norm(dim=1)
    assert torch.equal(adv[..., 4:, :], images[..., 4:, :]) and torch.equal(adv[..., 5:], images[..., 5:])
    assert torch.allclose(moved, torch.full((2,), 3.0 * attack.steps), rtol=1e-5)


# ---- the SEA-style ensemble: the running total decides -------------------------------------------------------------
def test_ensemble_chooses_by_the_running_mIoU_not_the_image_own():
    """Class 0 was predicted perfectly so far. Candidate A makes a new class entirely wrong (own mIoU 0.5, running
    mIoU 0.5); candidate B only wrongs class 0 (own mIoU 0, running 100/110): SEA keeps A, the one that lowers the
    running mIoU most; the image's own mIoU would keep B. The chosen areas then join the running total."""
    table = {'A': {0: [10, 10, 10], 1: [0, 10, 0]}, 'B': {0: [0, 10, 10]}}  # {class: [intersection, union, label]}
    for order in (['A', 'B'], ['B', 'A']):
        attack = SegEnsemble(steps=1)
        attack._areas = {0: [100, 100, 100]}
        attack.counts = lambda candidate, *args: table[candidate]
        assert order[attack.worst(order, None, None, None)] == 'A'
        assert attack._areas == {0: [110, 110, 110], 1: [0, 10, 0]}


# ---- DAG ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def dag_setup(demo_detector):
    model, items = demo_detector
    from mmengine.dataset import pseudo_collate
    item = pseudo_collate(copy.deepcopy(items[:1]))
    wrapper = DetRobustModel(model, score=False)
    return wrapper.task_objective(item['data_samples'][0]), wrapper.to_pixels(item['inputs'][0])


def test_dag_counts_only_the_proposals_still_classified_correctly(dag_setup):
    """Two targets on the same proposal: one labelled with the class the detector predicts there (still correct),
    one with another class (already fooled). The margin is the first target's term alone."""
    from mmdet.structures.bbox import bbox2roi
    objective, pixels = dag_setup
    boxes = dag_targets(objective, pixels, seeded(0))[0][:1].repeat(2, 1)
    model = objective.model
    with torch.no_grad():
        inputs, _ = objective.inputs(pixels)
        scores = model.roi_head._bbox_forward(model.extract_feat(inputs), bbox2roi([boxes]))['cls_score']
        predicted = int(scores[0].argmax())
        classes = model.roi_head.bbox_head.num_classes
        labels = torch.tensor([predicted, (predicted + 1) % classes])
        adversarial = torch.tensor([(predicted + 2) % classes, predicted])
        margin = dag_margin(objective, pixels, (boxes, labels, adversarial))
    expected = scores[0, adversarial[0]] - scores[0, predicted]
    assert torch.allclose(margin, expected.reshape(1), atol=1e-5)


def test_dag_adversarial_labels_are_never_the_true_ones(dag_setup):
    objective, pixels = dag_setup
    for seed in range(10):
        _, labels, adversarial = dag_targets(objective, pixels, seeded(seed))
        assert len(labels) and (adversarial != labels).all()
        assert ((0 <= adversarial) & (adversarial < objective.model.roi_head.bbox_head.num_classes)).all()


# ---- the equivariance-aware attack: fresh views at every step -------------------------------------------------------
class AngleRecorder:
    """A defense objective that draws a rotation as the purifier's views do and records it; differentiable."""

    def __init__(self):
        self.angles = []

    def __call__(self, images, feature_fn, generator):
        self.angles.append(Rotate(15).sample(generator)['angle'])
        return -(images / 255).flatten(1).mean(1)


def test_equivariance_aware_attack_draws_new_views_at_every_step():
    defense = RandomNoiseDefense(eps=6)
    defense.objective = AngleRecorder()
    attack = EquivarianceAwarePGD(lam=1.0, eps=4, step_size=1, steps=4)
    images = torch.rand(1, 3, 8, 8, generator=seeded(0)) * 255
    attack.perturb(images, lambda x: x.flatten(1).mean(1), seeded(0), context=AttackContext(defense, None))
    angles = defense.objective.angles
    assert len(angles) == 4 and len(set(angles)) == 4


# ---- colour jitter: contrast blends towards the mean grey of the image (torchvision's adjust_contrast) --------------
def test_color_jitter_contrast_blends_towards_the_mean_grey():
    """BGR image: left half pure red, right half black. Contrast 0 gives the mean of the grey image everywhere:
    0.299 (red's luma weight) × ½ of the range, in every channel."""
    image = torch.zeros(1, 3, 4, 8)
    image[:, 2, :, :4] = 255.0  # BGR: channel 2 is red
    jitter = ColorJitter(channel_order='bgr')
    params = dict(brightness=1.0, contrast=0.0, saturation=1.0, hue=0.0, grayscale=False, order=[1, 0, 2, 3])
    out = jitter.apply(image, params)
    assert torch.allclose(out, torch.full_like(out, 0.299 * 0.5 * 255), atol=1e-3)


# ---- the segmentation wrapper: padding and flips, as mmseg's own postprocessing ------------------------------------
def seg_sample(height, width, **meta):
    gen = torch.Generator().manual_seed(height * width)
    sample = SegDataSample(metainfo=dict(img_path='a.png', ori_shape=(height, width), img_shape=(height, width),
                                         **meta))
    sample.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, height, width), generator=gen))
    return torch.randint(0, 256, (1, 3, height, width), generator=gen).float(), sample


@pytest.fixture(scope='module')
def padding_segmentor(demo_segmentor):
    """The demo segmentor with a preprocessor that pads test inputs to 128×256 (at the right and bottom), as
    configs with ``data_preprocessor.test_cfg=dict(size=...)`` or ``size_divisor`` do."""
    model = copy.deepcopy(demo_segmentor)
    model.data_preprocessor.test_cfg = dict(size=(128, 256))
    return model


@pytest.mark.parametrize('meta', [{}, dict(flip=True, flip_direction='horizontal')])
def test_attacked_logits_are_the_models_own_prediction_logits(padding_segmentor, meta):
    """A 100×200 image is padded to 128×256 at the right and bottom: the logits the attack differentiates are
    mmseg's own ``seg_logits`` (padding cropped, un-flipped, at the label's size)."""
    wrapper = SegRobustModel(padding_segmentor, score=False)
    pixels, sample = seg_sample(100, 200, **meta)
    with torch.no_grad():
        ours = wrapper.task_objective(sample).logits(pixels)[0]
        theirs = wrapper.predict_pixels(pixels, sample).seg_logits.data
    assert ours.shape == theirs.shape == (19, 100, 200)
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_features_see_no_padding(padding_segmentor):
    """The features of a 100×200 image are those of the image alone, whatever the preprocessor pads it to."""
    wrapper = SegRobustModel(padding_segmentor, score=False)
    pixels, _ = seg_sample(100, 200)
    preprocessor = padding_segmentor.data_preprocessor
    alone = (pixels.flip(1) - preprocessor.mean) / preprocessor.std  # BGR -> RGB, normalised, not padded
    with torch.no_grad():
        features, expected = wrapper.feature_fn(pixels), padding_segmentor._forward(alone)
    assert torch.allclose(wrapper.normalise(pixels), alone, atol=1e-5)
    assert torch.allclose(features, expected, atol=1e-5)


def test_the_prediction_is_made_on_the_purified_attacked_image(demo_segmentor, monkeypatch):
    wrapper = SegRobustModel(demo_segmentor, attack=dict(type='PGD', eps=4, step_size=1, steps=1),
                             defense=dict(type='RandomNoiseDefense', eps=6), score=False)
    seen = {}
    purify, predict = wrapper.defense.purify, wrapper.predict_pixels

    def purified(pixels, *args):
        seen['purify input'], seen['purified'] = pixels.clone(), purify(pixels, *args)
        return seen['purified']

    def predicted(pixels, sample):
        seen['predicted'] = pixels.clone()
        return predict(pixels, sample)

    monkeypatch.setattr(wrapper.defense, 'purify', purified)
    monkeypatch.setattr(wrapper.attack, 'perturb', lambda x, *a, **k: seen.setdefault('attacked', x + 3))
    monkeypatch.setattr(wrapper, 'predict_pixels', predicted)
    image, sample = seg_sample(16, 32)
    wrapper.test_step(dict(inputs=[image[0].byte()], data_samples=[sample]))
    assert torch.equal(seen['purify input'], seen['attacked'])  # the defense purifies the attacked image
    assert torch.equal(seen['predicted'], seen['purified'])  # the model predicts on what it returned


# ---- the detection wrapper: ground-truth boxes where the network sees the objects ----------------------------------
def test_attack_boxes_land_where_mmdet_puts_them(tmp_path, demo_detector):
    """Images generated at 120×144 are resized ×4/3 to the config's 160×192; the test pipeline loads annotations
    after the resize, so the attack's objective must move the boxes itself. They must equal what mmdet's Resize does
    to boxes loaded before it (the training pipeline's order)."""
    from mmdet.registry import DATASETS

    from testbed import generate_coco
    root = generate_coco(tmp_path / 'coco', num_train=1, num_val=1, size=(120, 144))
    cfg = copy.deepcopy(Config.fromfile(DET_CONFIG).test_dataloader.dataset)
    cfg.data_root = str(root)
    loaded_first = copy.deepcopy(cfg)
    pipeline = loaded_first.pipeline
    loaded_first.pipeline = [pipeline[0], pipeline[2], pipeline[1], pipeline[3]]  # LoadAnnotations before Resize
    with DefaultScope.overwrite_default_scope('mmdet'):
        item, reference = DATASETS.build(cfg)[0], DATASETS.build(loaded_first)[0]
    sample = item['data_samples']
    assert tuple(sample.metainfo['scale_factor']) != (1.0, 1.0) and len(sample.gt_instances)
    objective = DetRobustModel(demo_detector[0], score=False).task_objective(sample)
    expected = reference['data_samples'].gt_instances.bboxes.tensor
    assert torch.allclose(objective.target.gt_instances.bboxes.tensor, expected, atol=1e-3)


# ---- the equivariance metric: clean images score higher ------------------------------------------------------------
def test_auc_is_high_when_clean_images_score_higher_than_attacked_ones():
    results = [dict(clean=0.9 - 0.01 * i, attacked=0.5 - 0.01 * i) for i in range(10)]
    metrics = EquivarianceMetric().compute_metrics(results)
    assert metrics['auc_clean_vs_attacked'] == 1.0
    assert EquivarianceMetric().compute_metrics([dict(clean=r['attacked'], attacked=r['clean']) for r in results])[
        'auc_clean_vs_attacked'] == 0.0
