"""FlipScaleTTA, the model's own test-time augmentation as a defense: mmseg's merge (the mean softmax over views,
each brought back; a detector's: the mean of the image's and its mirror's feature maps), the prediction through it,
adaptive attacks through the merge and transferred ones not, cost, and clear errors."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.dataset import pseudo_collate
from mmseg.models.segmentors import SegTTAModel

import mmequi  # noqa: F401
from mmequi.defenses import FlipScaleTTA, PurifiedTTA
from mmequi.models import DetRobustModel, PixelCrossEntropy, SegRobustModel
from mmequi.models.robust_model import preprocess

from test_seg_robust import batch

BPDA_APGD = dict(type='BPDAAPGD', eot=1, eps=4, steps=2)
PGD = dict(type='PGD', eps=4, step_size=1, steps=2)


def network_inputs(segmentor, image, sample):
    inputs, samples = preprocess(segmentor, image.float().unsqueeze(0), copy.deepcopy(sample))
    return inputs, samples[0].metainfo


def test_merge_is_the_mean_softmax_of_every_view_brought_back(demo_segmentor):
    """Two scales, each mirrored: the merged probabilities are the mean of the four views' softmax, a mirrored view's
    logits mirrored back and a rescaled view's resized back (a right-left asymmetric image shows a missing un-flip)."""
    image, sample = (x[0] for x in batch(1, 32, 64).values())
    inputs, meta = network_inputs(demo_segmentor, image, sample)

    def infer(view):
        return demo_segmentor.inference(view, [dict(meta, img_shape=tuple(view.shape[-2:]),
                                                    pad_shape=tuple(view.shape[-2:]))])
    with torch.no_grad():
        merged = FlipScaleTTA(scales=(1.0, 1.5), flip=True).merge(infer, inputs).exp()
        big = F.interpolate(inputs, size=(48, 96), mode='bilinear', align_corners=False)
        views = [infer(inputs), infer(inputs.flip(-1)).flip(-1),
                 F.interpolate(infer(big), size=(32, 64), mode='bilinear', align_corners=False),
                 F.interpolate(infer(big.flip(-1)).flip(-1), size=(32, 64), mode='bilinear', align_corners=False)]
    expected = torch.stack([v.softmax(1) for v in views]).mean(0)
    assert torch.allclose(merged, expected, atol=1e-6)
    assert (merged - infer(inputs).softmax(1)).abs().max() > 1e-2  # the views do change the prediction


def test_flip_tta_predicts_what_mmseg_seg_tta_model_predicts(demo_segmentor):
    """Flip only, one scale: the wrapper's TTA prediction is mmseg's SegTTAModel merge of the plain and the mirrored
    prediction (mmseg un-flips the mirrored one in postprocess_result, from its flip metainfo)."""
    image, sample = (x[0] for x in batch(1, 32, 64).values())
    with torch.no_grad():
        ours = SegRobustModel(demo_segmentor, defense=dict(type='FlipScaleTTA', scales=(1.0,), flip=True),
                              score=False).test_step(dict(inputs=[image], data_samples=[sample]))[0]
        plain = demo_segmentor.predict(*preprocess(demo_segmentor, image.float().unsqueeze(0),
                                                   copy.deepcopy(sample)))
        mirrored_sample = copy.deepcopy(sample)
        mirrored_sample.set_metainfo(dict(flip=True, flip_direction='horizontal'))
        mirrored = demo_segmentor.predict(*preprocess(demo_segmentor, image.flip(-1).float().unsqueeze(0),
                                                      mirrored_sample))
        theirs = SegTTAModel(module=demo_segmentor).merge_preds([plain + mirrored])[0]
    assert torch.equal(ours.pred_sem_seg.data, theirs.pred_sem_seg.data)
    assert not torch.equal(plain[0].pred_sem_seg.data, theirs.pred_sem_seg.data)  # the flip changes pixels


def test_one_view_tta_is_the_plain_model(demo_segmentor):
    data = batch(2, 32, 64)
    with torch.no_grad():
        one = SegRobustModel(demo_segmentor, defense=dict(type='FlipScaleTTA', scales=(1.0,), flip=False),
                             score=False).test_step(copy.deepcopy(data))
        plain = SegRobustModel(demo_segmentor, score=False).test_step(copy.deepcopy(data))
    for a, b in zip(one, plain):
        assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)
    image, sample = data['inputs'][0], data['data_samples'][0]
    pixels = image.float().unsqueeze(0)
    merged = PixelCrossEntropy(demo_segmentor, sample, FlipScaleTTA(scales=(1.0,), flip=False))(pixels)
    assert torch.allclose(merged, PixelCrossEntropy(demo_segmentor, sample)(pixels), atol=1e-5)


def test_an_adaptive_attack_goes_through_the_merge_a_transferred_one_does_not(demo_segmentor):
    image, sample = (x[0] for x in batch(1, 32, 64).values())
    pixels = image.float().unsqueeze(0)
    tta = dict(type='FlipScaleTTA', scales=(1.0, 1.5), flip=True)
    through = SegRobustModel(demo_segmentor, attack=BPDA_APGD, defense=tta, score=False).task_objective(sample)
    transferred = SegRobustModel(demo_segmentor, attack=PGD, defense=tta, score=False).task_objective(sample)
    with torch.no_grad():
        merged = PixelCrossEntropy(demo_segmentor, sample, FlipScaleTTA(scales=(1.0, 1.5), flip=True))(pixels)
        plain = PixelCrossEntropy(demo_segmentor, sample)(pixels)
        assert (merged - plain).abs().item() > 1e-3
        assert torch.allclose(through(pixels), merged, atol=1e-6)
        assert torch.allclose(transferred(pixels), plain, atol=1e-6)


def test_tta_changes_no_pixel_and_counts_its_forwards(demo_segmentor):
    model = SegRobustModel(demo_segmentor, attack=PGD, defense=dict(type='FlipScaleTTA'), score=False,
                           keep_images=True)
    with torch.no_grad():
        result = model.test_step(batch(1, 32, 64))[0]
    assert torch.equal(result.robust_images['attacked'], result.robust_images['purified'])
    # four views, two at 1.5× the side: 2·(1 + 2.25) forwards, one of which any prediction costs
    assert result.robust_passes == {'forward': 5.5, 'forward_backward': 0.0}


@pytest.mark.parametrize('scales', [(), 'x', (0.0,), (1.0, -2), (True,)])
def test_bad_scales_are_named(scales):
    with pytest.raises(ValueError, match='scales must be a non-empty sequence'):
        FlipScaleTTA(scales=scales)


@pytest.mark.parametrize('defense', [dict(type='FlipScaleTTA'), 'purified'])
def test_a_detector_refuses_a_rescaled_merge(demo_detector, defense):
    """A detector merges views at its neck, the image and its mirror: a rescaled view is refused by name."""
    detector, _ = demo_detector
    defense = PURIFIED_TTA if defense == 'purified' else defense
    with pytest.raises(ValueError, match=r'a detector merges views at its neck.*scales=\(1.0,\)'):
        DetRobustModel(detector, defense=defense)


FLIP_MERGE = dict(type='FlipScaleTTA', scales=(1.0,), flip=True)


def mirrored_mean(extract, inputs):
    """What a flip merge of a detector's maps is, written out: the mean of the image's and the mirror's maps, the
    mirror's mirrored back."""
    return tuple((a + b.flip(-1)) / 2 for a, b in zip(extract(inputs), extract(inputs.flip(-1))))


def detector_inputs(detector, item):
    sample = pseudo_collate([copy.deepcopy(item)])['data_samples'][0]
    return preprocess(detector, item['inputs'].float()[None], sample)


def test_detector_flip_merge_averages_the_mirrored_maps(demo_detector):
    """Inside ``neck_merged`` the detector's ``extract_feat`` is the mean of the image's and its mirror's maps, each
    level mirrored back (written out above, not with the code under test); after, the model's own method again."""
    from mmequi.models.det_robust_model import neck_merged
    detector, items = demo_detector
    inputs, _ = detector_inputs(detector, items[0])
    tta = FlipScaleTTA(scales=(1.0,), flip=True)
    with torch.no_grad():
        plain = detector.extract_feat(inputs)
        expected = mirrored_mean(detector.extract_feat, inputs)
        with neck_merged(detector, tta):
            merged = detector.extract_feat(inputs)
        assert 'extract_feat' not in vars(detector)
        assert all(torch.equal(a, b) for a, b in zip(detector.extract_feat(inputs), plain))
    assert len(merged) == len(plain) == 5
    for got, want, own in zip(merged, expected, plain):
        assert torch.allclose(got, want, atol=1e-5) and not torch.allclose(got, own, atol=1e-3)


def test_detector_predicts_and_is_attacked_through_the_flip_merge(demo_detector, monkeypatch):
    """The wrapper's prediction is the detector's own predict on the merged maps, and an adaptive attack's loss is
    the detector's loss on them; a transferred attack's loss is the plain detector's. Counted: one more forward."""
    from mmequi.models.det_robust_model import DetectionLoss
    detector, items = demo_detector
    item = pseudo_collate([copy.deepcopy(items[0])])
    sample, pixels = item['data_samples'][0], item['inputs'][0].float()[None]
    through = DetRobustModel(detector, attack=BPDA_APGD, defense=FLIP_MERGE, score=False)
    transferred = DetRobustModel(detector, attack=PGD, defense=FLIP_MERGE, score=False)
    with torch.no_grad():
        ours = through.predict_pixels(pixels, sample).pred_instances
        loss_through, loss_transferred = through.task_objective(sample)(pixels), transferred.task_objective(sample)(pixels)
        plain_loss = DetectionLoss(detector, sample)(pixels)
        plain = DetRobustModel(detector).predict_pixels(pixels, sample).pred_instances
        own = type(detector).extract_feat
        monkeypatch.setattr(type(detector), 'extract_feat', lambda self, x: mirrored_mean(lambda v: own(self, v), x))
        theirs = DetRobustModel(detector).predict_pixels(pixels, sample).pred_instances
        merged_loss = DetectionLoss(detector, sample)(pixels)
    assert torch.allclose(ours.bboxes, theirs.bboxes, atol=1e-3) and torch.allclose(ours.scores, theirs.scores, atol=1e-5)
    assert ours.bboxes.shape != plain.bboxes.shape or not torch.allclose(ours.bboxes, plain.bboxes, atol=1e-2)
    assert torch.allclose(loss_through, merged_loss, atol=1e-5) and torch.equal(loss_transferred, plain_loss)
    assert not torch.allclose(loss_through, plain_loss, atol=1e-4)
    monkeypatch.undo()
    with torch.no_grad():
        (result, ) = DetRobustModel(detector, defense=FLIP_MERGE, score=False).test_step(item)
    assert result.robust_passes['forward'] == 1.0  # the mirror's forward, beyond the one any prediction costs


FLIP = dict(type='EquivariancePurifier', transforms=[dict(type='HFlip')], steps=5, max_view_area=1.0, eps=6,
            step_size=255, norm='linf', random_start=True, noise=True)
PURIFIED_TTA = dict(type='PurifiedTTA', purifier=FLIP, tta=dict(type='FlipScaleTTA', scales=(1.0, 1.5), flip=True))


def test_purified_tta_purifies_as_its_purifier_then_predicts_through_the_merge(demo_segmentor):
    """The purified image is the purifier's own (same draws), within ε_v and the pixel range; the prediction is the
    TTA merge of that image, which is neither the purifier's plain prediction nor TTA on the unpurified image."""
    data = batch(1, 32, 64)
    image, sample = data['inputs'][0], data['data_samples'][0]
    both = SegRobustModel(demo_segmentor, defense=PURIFIED_TTA, score=False)
    flip = SegRobustModel(demo_segmentor, defense=FLIP, score=False)
    tta = SegRobustModel(demo_segmentor, defense=PURIFIED_TTA['tta'], score=False)
    seed, pixels = both.image_seed(sample, 0), image.float().unsqueeze(0)
    purified = both.defense.purify(pixels, both.defense_feature_fn, both.generator(seed, 2))
    assert torch.equal(purified, flip.defense.purify(pixels, flip.defense_feature_fn, flip.generator(seed, 2)))
    assert 5.5 < (purified - pixels).abs().max() <= 6 and purified.min() >= 0 and purified.max() <= 255
    with torch.no_grad():
        ours = both.test_step(copy.deepcopy(data))[0].pred_sem_seg.data
        expected = tta.predict_pixels(purified, sample).pred_sem_seg.data
        unmerged = flip.test_step(copy.deepcopy(data))[0].pred_sem_seg.data
        unpurified = tta.test_step(copy.deepcopy(data))[0].pred_sem_seg.data
    assert torch.equal(ours, expected)
    assert not torch.equal(ours, unmerged) and not torch.equal(ours, unpurified)


def test_purified_tta_counts_the_purifier_and_the_merge(demo_segmentor):
    model = SegRobustModel(demo_segmentor, defense=PURIFIED_TTA, score=False)
    with torch.no_grad():
        result = model.test_step(batch(1, 32, 64))[0]
    # T = 5 steps of the image and its flip view: 10 forward + backward; the merge: 5.5 forwards beyond the prediction's
    assert result.robust_passes == {'forward': 5.5, 'forward_backward': 10.0}


def test_an_adaptive_attack_on_purified_tta_purifies_and_goes_through_the_merge(demo_segmentor, monkeypatch):
    image, sample = (x[0] for x in batch(1, 32, 64).values())
    pixels = image.float().unsqueeze(0)
    model = SegRobustModel(demo_segmentor, attack=BPDA_APGD, defense=PURIFIED_TTA, score=False)
    with torch.no_grad():
        merged = PixelCrossEntropy(demo_segmentor, sample, model.defense.tta)(pixels)
        assert torch.allclose(model.task_objective(sample)(pixels), merged, atol=1e-6)
    calls = []
    purify = model.defense.purifier.purify
    monkeypatch.setattr(model.defense.purifier, 'purify', lambda *a, **k: calls.append(1) or purify(*a, **k))
    model.attacked(pixels, sample, model.image_seed(sample, 0), {})
    assert len(calls) >= BPDA_APGD['steps']  # every step's forward purifies (BPDA), with the purifier's draws
    scored = SegRobustModel(demo_segmentor, defense=PURIFIED_TTA)
    assert repr(scored.scorer.objective.transforms) == '[HFlip()]'  # the score uses the purifier's flip view


@pytest.mark.parametrize('purifier, tta, message', [
    (dict(type='FlipScaleTTA'), dict(type='FlipScaleTTA'), 'purifier must change pixels'),
    (FLIP, FLIP, 'tta must be a FlipScaleTTA'),
])
def test_purified_tta_names_a_wrong_part(purifier, tta, message):
    with pytest.raises(ValueError, match=message):
        PurifiedTTA(purifier=purifier, tta=tta)


