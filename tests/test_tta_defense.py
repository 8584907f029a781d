"""FlipScaleTTA, the model's own test-time augmentation as a defense: mmseg's merge (the mean softmax over views,
each brought back; a detector's: NMS over the boxes of the image and its mirror), the prediction through it,
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


@pytest.mark.parametrize('defense', [dict(type='FlipScaleTTA'), 'purified',
                                     dict(type='FlipScaleTTA', scales=(1.0,), flip=False)])
def test_a_detector_refuses_a_rescaled_merge(demo_detector, defense):
    """A detector merges the boxes of the image and its mirror: a rescaled view (or no mirror) is refused by name."""
    detector, _ = demo_detector
    defense = PURIFIED_TTA if defense == 'purified' else defense
    message = r'a detector merges the boxes of the image and its mirror.*scales=\(1.0,\), flip=True'
    with pytest.raises(ValueError, match=message):
        DetRobustModel(detector, defense=defense)


FLIP_MERGE = dict(type='FlipScaleTTA', scales=(1.0,), flip=True)


def test_detector_flip_merge_is_nms_over_the_image_and_its_mirror(demo_detector):
    """The merged prediction is written out here without mmdet's TTA code: the plain detector's boxes on the image
    and on its mirror, the mirror's flipped back in the original image's width, NMS at 0.5 over both (per class),
    the best 100. It is not the plain prediction."""
    from mmcv.ops import batched_nms
    detector, items = demo_detector
    item = pseudo_collate([copy.deepcopy(items[0])])
    sample, pixels = item['data_samples'][0], item['inputs'][0].float()[None]
    plain_model = DetRobustModel(detector)
    with torch.no_grad():
        ours = DetRobustModel(detector, defense=FLIP_MERGE).predict_pixels(pixels, sample).pred_instances
        plain = plain_model.predict_pixels(pixels, sample).pred_instances
        mirror = plain_model.predict_pixels(pixels.flip(-1), sample).pred_instances
    width = sample.metainfo['ori_shape'][1]
    back = torch.stack([width - mirror.bboxes[:, 2], mirror.bboxes[:, 1], width - mirror.bboxes[:, 0],
                        mirror.bboxes[:, 3]], -1)
    labels = torch.cat([plain.labels, mirror.labels])
    dets, keep = batched_nms(torch.cat([plain.bboxes, back]), torch.cat([plain.scores, mirror.scores]), labels,
                             dict(type='nms', iou_threshold=0.5))
    assert torch.allclose(ours.bboxes, dets[:100, :4]) and torch.allclose(ours.scores, dets[:100, 4])
    assert torch.equal(ours.labels, labels[keep][:100])
    assert ours.bboxes.shape != plain.bboxes.shape or not torch.allclose(ours.bboxes, plain.bboxes, atol=1e-2)


def test_weighted_boxes_fusion_averages_what_both_views_see_and_halves_the_rest():
    """Written out by hand: the mirror's boxes are flipped back in the original image's width; a box both views
    predict (same class, IoU > 0.55) keeps the mean of its two scores and their score-weighted mean box; a box one
    view predicts keeps half its score; the result is ordered by score."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from mmequi.models.det_robust_model import fused_boxes

    def prediction(boxes, scores, labels):
        sample = DetDataSample(metainfo=dict(ori_shape=(50, 100)))
        sample.pred_instances = InstanceData(bboxes=torch.as_tensor(boxes), scores=torch.as_tensor(scores),
                                             labels=torch.as_tensor(labels, dtype=torch.long))
        return sample

    plain = prediction([[10., 10., 30., 40.], [50., 5., 60., 15.]], [0.8, 0.6], [0, 1])
    # the first object seen again in the mirror (x flipped in the width of 100, shifted by 2 pixels), and one more
    mirror = prediction([[68., 10., 88., 40.], [5., 20., 15., 30.]], [0.4, 0.5], [0, 0])
    fused = fused_boxes(plain, mirror).pred_instances
    assert torch.allclose(fused.scores, torch.tensor([0.6, 0.3, 0.25]))
    assert torch.equal(fused.labels, torch.tensor([0, 1, 0]))
    both = (0.8 * torch.tensor([10., 10., 30., 40.]) + 0.4 * torch.tensor([12., 10., 32., 40.])) / 1.2
    assert torch.allclose(fused.bboxes, torch.stack([both, torch.tensor([50., 5., 60., 15.]),
                                                     torch.tensor([85., 20., 95., 30.])]), atol=1e-4)
    empty = fused_boxes(prediction(torch.zeros(0, 4), [], []), prediction(torch.zeros(0, 4), [], []))
    assert empty.pred_instances.bboxes.shape == (0, 4) and len(empty.pred_instances.scores) == 0


def test_detector_wbf_merge_fuses_the_image_and_its_mirror(demo_detector):
    """With ``box_merge='wbf'`` the prediction is the fusion of the plain detector's boxes on the image and on its
    mirror (not NMS's merge); the attack's loss and the cost are those of the NMS merge."""
    from mmequi.models.det_robust_model import fused_boxes
    detector, items = demo_detector
    item = pseudo_collate([copy.deepcopy(items[0])])
    sample, pixels = item['data_samples'][0], item['inputs'][0].float()[None]
    plain_model, wbf = DetRobustModel(detector), dict(FLIP_MERGE, box_merge='wbf')
    with torch.no_grad():
        ours = DetRobustModel(detector, defense=wbf).predict_pixels(pixels, sample).pred_instances
        nms = DetRobustModel(detector, defense=FLIP_MERGE).predict_pixels(pixels, sample).pred_instances
        expected = fused_boxes(plain_model.predict_pixels(pixels, sample),
                               plain_model.predict_pixels(pixels.flip(-1), sample)).pred_instances
        through = DetRobustModel(detector, attack=BPDA_APGD, defense=wbf, score=False).task_objective(sample)
        assert torch.equal(through(pixels), DetRobustModel(detector, attack=BPDA_APGD, defense=FLIP_MERGE,
                                                           score=False).task_objective(sample)(pixels))
    assert torch.equal(ours.bboxes, expected.bboxes) and torch.equal(ours.scores, expected.scores)
    assert ours.scores.shape != nms.scores.shape or not torch.allclose(ours.scores, nms.scores)


@pytest.mark.parametrize('box_merge', ['NMS', 'soft', None])
def test_an_unknown_box_merge_is_named(box_merge):
    with pytest.raises(ValueError, match="box_merge must be one of \\('nms', 'wbf'\\)"):
        FlipScaleTTA(scales=(1.0,), box_merge=box_merge)


@pytest.mark.parametrize('boxes', ['tensor', 'HorizontalBoxes'])
def test_mirrored_ground_truth_for_either_box_type(boxes):
    """The mirror's ground truth: x1, x2 -> width - x2, width - x1, for mmdet's box type and for a plain tensor,
    on a copy (the sample itself unchanged)."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.bbox import HorizontalBoxes
    from mmengine.structures import InstanceData

    from mmequi.models.det_robust_model import mirrored
    box = torch.tensor([[10., 2., 30., 8.]])
    sample = DetDataSample(gt_instances=InstanceData(bboxes=HorizontalBoxes(box) if boxes != 'tensor' else box))
    flipped = mirrored(sample, 100).gt_instances.bboxes
    assert type(flipped) is type(sample.gt_instances.bboxes)
    assert torch.equal(getattr(flipped, 'tensor', flipped), torch.tensor([[70., 2., 90., 8.]]))
    assert torch.equal(getattr(sample.gt_instances.bboxes, 'tensor', sample.gt_instances.bboxes), box)


def test_detector_flip_merge_is_attacked_through_both_views(demo_detector):
    """An adaptive attack's loss is the mean of the detector's loss on the image and on its mirror against the
    mirrored ground truth (mirrored here in the original image's coordinates); a transferred attack's is the plain
    loss. The merge's prediction counts one more forward."""
    from mmequi.models.det_robust_model import DetectionLoss
    detector, items = demo_detector
    item = pseudo_collate([copy.deepcopy(items[0])])
    sample, pixels = item['data_samples'][0], item['inputs'][0].float()[None]
    mirror_sample = copy.deepcopy(sample)
    gt, width = mirror_sample.gt_instances, sample.metainfo['ori_shape'][1]
    boxes = getattr(gt.bboxes, 'tensor', gt.bboxes)  # mmdet's box type or a tensor
    flipped = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], -1)
    gt.bboxes = type(gt.bboxes)(flipped) if hasattr(gt.bboxes, 'tensor') else flipped
    through = DetRobustModel(detector, attack=BPDA_APGD, defense=FLIP_MERGE, score=False).task_objective(sample)
    transferred = DetRobustModel(detector, attack=PGD, defense=FLIP_MERGE, score=False).task_objective(sample)
    with torch.no_grad():
        plain, mirror = DetectionLoss(detector, sample)(pixels), DetectionLoss(detector, mirror_sample)(pixels.flip(-1))
        unmirrored = DetectionLoss(detector, sample)(pixels.flip(-1))
        assert torch.allclose(through(pixels), (plain + mirror) / 2, atol=1e-5)
        assert torch.equal(transferred(pixels), plain)
        assert not torch.allclose(mirror, unmirrored, atol=1e-2)  # the mirrored ground truth matters
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


