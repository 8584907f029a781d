"""Models of the mmseg / mmdet zoos through the wrapper (random weights, small inputs): views the model can take,
and the support-matrix tool (tools/zoo.py)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmequi.models import DetRobustModel, SegRobustModel

MMDET_CONFIGS = osp.join(osp.dirname(__import__('mmdet').__file__), '.mim', 'configs')
MMSEG_CONFIGS = osp.join(osp.dirname(__import__('mmseg').__file__), '.mim', 'configs')


def build(codebase, path):
    registry = __import__(f'{codebase}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(codebase):
        return registry.build(Config.fromfile(path).model).eval()


def test_views_are_padded_for_a_neck_that_cannot_take_any_size():
    """YOLOX's PAFPN concatenates upsampled levels: a rescaled view of an odd size breaks it. The wrapper finds that
    out when it is built and pads every view as the data preprocessor pads (to its divisor), then crops each level
    back to the view's share: the features of a padded view equal those of the padded input, cropped."""
    torch.manual_seed(0)
    model = build('mmdet', osp.join(MMDET_CONFIGS, 'yolox', 'yolox_nano_8xb8-300e_coco.py'))
    wrapper = DetRobustModel(model, defense=dict(type='EquivariancePurifier', num_views=1, steps=1), feature='neck')
    assert wrapper.view_divisor == 32
    assert DetRobustModel(model, score=False, feature='neck').view_divisor == 32  # the memory probe's wrapper too
    pixels = torch.rand(1, 3, 70, 101) * 255
    with pytest.raises(RuntimeError, match='Sizes of tensors must match'):
        wrapper.features(wrapper.normalise(pixels), 'neck')  # unpadded: the failure the zoo saw
    levels = wrapper.feature_fn(pixels)
    padded = torch.nn.functional.pad(wrapper.normalise(pixels), (0, 27, 0, 26))  # to 96 × 128
    whole = wrapper.features(padded, 'neck')
    for level, full in zip(levels, whole):
        stride = 96 // full.shape[-2]
        assert level.shape[-2:] == (-(-70 // stride), -(-101 // stride))  # ceil: every pixel of the view covered
        assert torch.equal(level, full[..., :level.shape[-2], :level.shape[-1]])
    purified = wrapper.defense.purify(pixels, wrapper.defense_feature_fn, torch.Generator().manual_seed(0))
    assert purified.shape == pixels.shape and (purified - pixels).abs().max() <= 6 + 1e-4


def test_a_model_that_takes_any_size_keeps_its_views_as_they_are(repo_root):
    """The demo models took every view before: no padding, so their scores are what they were."""
    seg = build('mmseg', osp.join(repo_root, 'configs/demo/fcn_r18-d8_synthetic-cityscapes.py'))
    det = build('mmdet', osp.join(repo_root, 'configs/demo/faster-rcnn_r18_fpn_synthetic-coco.py'))
    assert SegRobustModel(seg, defense=dict(type='EquivariancePurifier')).view_divisor is None
    assert DetRobustModel(det, defense=dict(type='EquivariancePurifier')).view_divisor is None
    assert SegRobustModel(seg, score=False).view_divisor is None


def test_a_query_based_head_gives_its_class_map_as_logits():
    """Mask2Former's head needs the data samples in forward: its 'logits' are the per-class map its predict makes of
    the queries' classes and masks (softmax over classes without "no object", times the sigmoid masks), at the
    input's size, and they follow a flip of the input as a segmentation map does."""
    torch.manual_seed(0)
    model = build('mmseg', osp.join(MMSEG_CONFIGS, 'mask2former', 'mask2former_r50_8xb2-90k_cityscapes-512x1024.py'))
    wrapper = SegRobustModel(model, defense=dict(type='EquivariancePurifier', num_views=1, steps=1))
    assert wrapper.feature == 'logits' and wrapper.view_divisor is None
    pixels = torch.rand(1, 3, 64, 96) * 255
    with torch.no_grad():
        logits = wrapper.feature_fn(pixels)
        inputs = wrapper.normalise(pixels)
        cls, masks = (out[-1] for out in model.decode_head(model.extract_feat(inputs), [
            __import__('mmseg.structures', fromlist=['SegDataSample']).SegDataSample(
                metainfo=dict(img_shape=(64, 96), pad_shape=(64, 96)))]))
    masks = torch.nn.functional.interpolate(masks, size=(64, 96), mode='bilinear', align_corners=False)
    expected = torch.einsum('bqc,bqhw->bchw', cls.softmax(-1)[..., :-1], masks.sigmoid())
    assert logits.shape == (1, 19, 64, 96) and torch.allclose(logits, expected, atol=1e-5)
    purified = wrapper.defense.purify(pixels, wrapper.defense_feature_fn, torch.Generator().manual_seed(0))
    assert (purified - pixels).abs().max() <= 6 + 1e-4


def test_a_cascade_with_a_point_head_gives_its_coarse_logits_and_a_dense_cascade_its_last():
    """PointRend refines sampled points, not a dense map: its 'logits' are the coarse head's. OCRNet's second head
    refines the dense map (forward(inputs, prev_output)): its 'logits' stay the last head's, as before."""
    torch.manual_seed(0)
    pixels = torch.rand(1, 3, 64, 128) * 255
    point_rend = build('mmseg', osp.join(MMSEG_CONFIGS, 'point_rend', 'pointrend_r50_4xb2-80k_cityscapes-512x1024.py'))
    wrapper = SegRobustModel(point_rend, score=False)
    with torch.no_grad():
        inputs = wrapper.normalise(pixels)
        coarse = point_rend.decode_head[0].forward(point_rend.extract_feat(inputs))
        assert torch.equal(wrapper.feature_fn(pixels), coarse)
    ocr = build('mmseg', osp.join(MMSEG_CONFIGS, 'ocrnet', 'ocrnet_hr18s_4xb2-40k_cityscapes-512x1024.py'))
    wrapper = SegRobustModel(ocr, score=False)
    with torch.no_grad():
        assert torch.equal(wrapper.feature_fn(pixels), ocr._forward(wrapper.normalise(pixels)))


def test_a_head_with_an_auxiliary_output_gives_its_segmentation_logits():
    """EncNet's head returns (logits, SE-loss vector); its predict takes the first: so do the wrapper's logits."""
    torch.manual_seed(0)
    model = build('mmseg', osp.join(MMSEG_CONFIGS, 'encnet', 'encnet_r50-d8_4xb2-40k_cityscapes-512x1024.py'))
    wrapper = SegRobustModel(model, score=False)
    pixels = torch.rand(1, 3, 64, 128) * 255
    with torch.no_grad():
        logits = wrapper.feature_fn(pixels)
        expected = model.decode_head.forward(model.extract_feat(wrapper.normalise(pixels)))
    assert isinstance(expected, tuple) and torch.equal(logits, expected[0]) and logits.shape[1] == 19


def test_a_model_of_one_input_size_is_refused_rescaled_views_and_runs_size_keeping_ones():
    """A BEiT (its relative position tables are built for one input size, here 64×64) fails on every other size,
    padded or not: the rescale views are refused before any image, with a message naming the views that work; the
    flip views keep the image's size and run (attack, purification and score on a 64×64 image)."""
    from mmengine import ConfigDict
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    cfg = dict(type='EncoderDecoder',
               data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                                      std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
               backbone=dict(type='BEiT', img_size=(64, 64), patch_size=16, embed_dims=32, num_layers=2, num_heads=2,
                             mlp_ratio=2, out_indices=(1, ), qv_bias=True, init_values=0.1),
               decode_head=dict(type='FCNHead', in_channels=32, channels=16, num_convs=1, num_classes=19, in_index=0),
               test_cfg=ConfigDict(mode='whole'))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = __import__('mmseg.registry', fromlist=['MODELS']).MODELS.build(cfg).eval()
    with pytest.raises(ValueError, match=r"takes inputs of one size only .* the flip preset \(--defense "
                                         r"equivariance_flip"):
        SegRobustModel(model, defense=dict(type='EquivariancePurifier')).view_divisor
    wrapper = SegRobustModel(model, attack=dict(type='PGD', eps=4, step_size=1, steps=1),
                             defense=dict(type='EquivariancePurifier', transforms=[dict(type='HFlip')], steps=1))
    assert wrapper.view_divisor is None
    sample = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64), img_path='a'))
    sample.gt_sem_seg = PixelData(data=torch.zeros(1, 64, 64, dtype=torch.long))
    (result, ) = wrapper.test_step(dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
                                        data_samples=[sample]))
    assert set(result.equivariance_scores) == {'clean', 'attacked', 'purified'}


def test_detr_style_losses_get_what_they_need_in_eval_numbers():
    """Deformable DETR's loss needs the encoder's outputs, which the detector builds only when flagged as training:
    the attack's loss flags the modules (not normalisation, dropout or attention dropout) for the call, so it runs;
    it has no randomness left (the same value under another seed: its dropouts, p = 0.1, stay off) and every flag is
    as it was afterwards."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from mmequi.models.det_robust_model import DetectionLoss
    from tools.zoo import drop_pretrained
    torch.manual_seed(0)
    cfg = Config.fromfile(osp.join(MMDET_CONFIGS, 'deformable_detr', 'deformable-detr_r50_16xb2-50e_coco.py')).model
    drop_pretrained(cfg)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = __import__('mmdet.registry', fromlist=['MODELS']).MODELS.build(cfg)
    model.init_weights()  # its level embeddings are torch.Tensor(...) until then: whatever the memory held
    model.eval()
    sample = DetDataSample(metainfo=dict(img_shape=(64, 96), ori_shape=(64, 96), scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[10.0, 10.0, 50.0, 40.0]]), labels=torch.tensor([3]))
    flags = {m: m.training for m in model.modules()}
    pixels = torch.rand(1, 3, 64, 96) * 255
    first, second = DetectionLoss(model, sample, seed=0)(pixels), DetectionLoss(model, sample, seed=1)(pixels)
    assert torch.isfinite(first).all() and torch.equal(first, second)
    assert {m: m.training for m in model.modules()} == flags


def test_ssd_predicts_through_the_wrapper():
    """mmdet 3.3.0's SSDHead reads a loss_cls it never builds when it predicts: the wrapper gives it the value that
    means "no custom classes", and SSD predicts."""
    from mmdet.structures import DetDataSample
    model = build('mmdet', osp.join(MMDET_CONFIGS, 'ssd', 'ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'))
    wrapper = DetRobustModel(model, score=False)
    sample = DetDataSample(metainfo=dict(img_shape=(96, 96), ori_shape=(96, 96), scale_factor=(1.0, 1.0)))
    result = wrapper.predict_pixels(torch.rand(1, 3, 96, 96) * 255, sample)
    assert 'bboxes' in result.pred_instances


def test_the_support_matrix_runs_a_family_through_the_two_config_lines(tmp_path, monkeypatch):
    """tools/zoo.py: the representative of a family (a dataset the test bed has, a small model, no TTA variant), its
    run in a fresh process through custom_imports + RobustTestHook on the test bed (task metric and scores out), and
    a table that lists every planned family, run or not."""
    from tools import zoo
    monkeypatch.setitem(zoo.TEST_BED, 'mmseg', str(tmp_path / 'data' / 'cityscapes'))
    monkeypatch.setitem(zoo.TEST_BED, 'mmdet', str(tmp_path / 'data' / 'coco'))
    rows = {r['family']: r for r in zoo.plan(['mmseg'], ['fcn', 'mae', 'mask2former'])}
    assert osp.basename(rows['fcn']['config']) == 'fcn_r18-d8_4xb2-80k_cityscapes-769x769.py'
    assert rows['mae']['reason'] == 'pretraining' and rows['mae']['config'] is None
    assert 'cityscapes' in osp.basename(rows['mask2former']['config'])
    zoo.prepare_data()
    record = zoo.run_family(rows['fcn'], str(tmp_path / 'zoo'), timeout=600)
    assert record['status'] == 'ok', record
    assert 'mIoU' in record['metrics'] and 'equivariance/purified' in record['metrics']
    (tmp_path / 'records').mkdir()
    (tmp_path / 'records' / 'mmseg-fcn.json').write_text(__import__('json').dumps(record))
    counts = zoo.render(zoo.collect(list(rows.values()), str(tmp_path / 'records')), str(tmp_path / 'out'))
    assert counts == {'ok': 1, 'refused': 0, 'needs': 0, 'upstream': 0, 'fails': 0, 'out of scope': 1,
                      'not run yet': 1}
    table = (tmp_path / 'out' / 'README.md').read_text()
    assert '| mmseg | fcn | `fcn_r18-d8_4xb2-80k_cityscapes-769x769.py` | ✓ |' in table
    assert '| mmseg | mask2former |' in table and 'not run yet' in table


def test_a_detector_with_a_semantic_head_is_attacked_without_stuff_maps():
    """HTC (like SCNet, DetectoRS) trains a semantic head on stuff maps a detection test split does not load: the
    attack's loss gives that head a map of its ignore label, so its term is zero and the rest of the detector's loss
    (RPN and the cascade's boxes and masks) drives the attack, with a gradient on the image."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData

    from mmequi.models.det_robust_model import DetectionLoss
    from mmequi.models.robust_model import loss_mode
    torch.manual_seed(0)
    model = build('mmdet', osp.join(MMDET_CONFIGS, 'htc', 'htc_r50_fpn_1x_coco.py'))
    sample = DetDataSample(metainfo=dict(img_shape=(64, 96), ori_shape=(64, 96), scale_factor=(1.0, 1.0)))
    masks = torch.zeros(1, 64, 96, dtype=torch.uint8)
    masks[:, 10:40, 10:50] = 1
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[10.0, 10.0, 50.0, 40.0]]), labels=torch.tensor([3]),
                                       masks=BitmapMasks(masks.numpy(), 64, 96))
    pixels = (torch.rand(1, 3, 64, 96) * 255).requires_grad_()
    objective = DetectionLoss(model, sample)
    inputs, samples = objective.inputs(pixels)
    stuff = samples[0].gt_sem_seg.sem_seg
    assert stuff.shape[-2:] == inputs.shape[-2:] and (stuff == 255).all()
    loss = objective(pixels)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and loss.item() > 0 and pixels.grad.abs().sum() > 0
    with torch.no_grad(), loss_mode(model):
        losses = model.loss(inputs, samples)
    assert float(losses['loss_semantic_seg']) == 0.0


@pytest.fixture(scope='module')
def zoo_data(tmp_path_factory):
    from tools import zoo
    root = tmp_path_factory.mktemp('zoo')
    test_bed = {'mmseg': str(root / 'data' / 'cityscapes'), 'mmdet': str(root / 'data' / 'coco')}
    with pytest.MonkeyPatch.context() as patch:
        for codebase, path in test_bed.items():
            patch.setitem(zoo.TEST_BED, codebase, path)
        zoo.prepare_data()
        yield root


@pytest.mark.parametrize('codebase, family', [
    ('mmseg', 'mask2former'),  # a query-based head: the class map of its queries
    ('mmseg', 'point_rend'),  # a cascade with a point head: the coarse head's logits
    ('mmseg', 'pidnet'),  # a real-time segmentor with auxiliary outputs
    ('mmdet', 'yolox'),  # a real-time detector whose neck takes only multiples of 32
    ('mmdet', 'deformable_detr'),  # DETR-style: its loss needs the training flags
    ('mmdet', 'htc'),  # a cascade with a semantic head: no stuff maps in a detection test split
])
def test_one_family_of_each_model_structure_runs_through_the_two_config_lines(zoo_data, codebase, family):
    """The structures the wrapper has a rule for, each through tools/zoo.py as `make zoo` runs them (a fresh
    process, the family's installed config, custom_imports + RobustTestHook, random weights, the test bed's image):
    the task metric and the three equivariance scores come out, at the zoo's small input."""
    from tools import zoo
    (row, ) = zoo.plan([codebase], [family])
    record = zoo.run_family(row, str(zoo_data / 'runs'), timeout=900)
    assert record['status'] == 'ok' and record.get('input') is None, record
    assert {'equivariance/clean', 'equivariance/attacked', 'equivariance/purified'} <= set(record['metrics'])


def test_the_committed_support_matrix_lists_every_family_and_explains_every_failure(repo_root):
    """docs/zoo (make zoo) has a row for every family folder of the installed mmseg and mmdet configs, each run:
    a pass, a refusal with its message, or a failure that is not the hook's (an environment need, a model that
    fails without mmequi too)."""
    import json

    from tools import zoo
    with open(osp.join(repo_root, 'docs', 'zoo', 'support.json')) as f:
        records = json.load(f)
    assert sorted((r['codebase'], r['family']) for r in records) == sorted(
        (codebase, family) for codebase in ('mmseg', 'mmdet') for family in zoo.family_configs(codebase))
    unexplained = [(r['family'], r['status'], r.get('error')) for r in records
                   if r['status'] not in ('ok', 'refused', 'needs', 'upstream', 'out of scope')]
    assert not unexplained


def test_a_failure_without_mmequi_is_named_by_what_the_environment_lacks():
    from tools.zoo import needs
    assert needs("RuntimeError: carafe_forward_impl: implementation for device cpu not found.") == \
        "a GPU: mmcv's carafe op has no CPU kernel"
    assert needs("ModuleNotFoundError: No module named 'torchvision'") == 'the torchvision package, not installed here'
    assert needs("KeyError: 'mmpretrain.ConvNeXt is not in the mmseg::model registry.") == \
        'the mmpretrain package, not installed here'
    assert needs('RuntimeError: skimage is not installed, please install it') == \
        'the skimage package, not installed here'
    assert needs('AssertionError: To use VPD model, please install required packages via `pip install -r '
                 'requirements/optional.txt`.') == \
        "mmseg's optional packages (requirements/optional.txt), not installed here"
    assert needs('ImportError: Please run "pip install sklearn" to install sklearn first.') == \
        'the sklearn package, not installed here'
    assert needs("TypeError: CascadeRPNHead.__init__() missing 1 required positional argument: 'num_classes'") is None


def test_an_instance_segmentor_without_masks_in_its_test_pipeline_is_refused_before_any_image():
    """Mask R-CNN's loss needs masks: a test pipeline that loads boxes only (or nothing) is refused when the hook
    wraps the model, naming the step with with_mask=True; with masks loaded it wraps, but not with a defense that
    merges views' boxes; a box-only detector asks for boxes only."""
    from types import SimpleNamespace

    from mmcv.transforms import LoadImageFromFile
    from mmdet.datasets.transforms import LoadAnnotations, PackDetInputs
    from mmengine.logging import MMLogger

    from mmequi.hooks import RobustTestHook

    def runner(model, *steps):
        pipeline = SimpleNamespace(transforms=[LoadImageFromFile(), *steps, PackDetInputs()])  # a Compose's list
        loop = SimpleNamespace(evaluator=SimpleNamespace(metrics=[]),
                               dataloader=SimpleNamespace(dataset=SimpleNamespace(pipeline=pipeline)))
        return SimpleNamespace(model=model, test_loop=loop, logger=MMLogger.get_instance('test_masks'))
    attack = dict(type='PGD', eps=4, step_size=1, steps=1)
    mask_rcnn = build('mmdet', osp.join(MMDET_CONFIGS, 'mask_rcnn', 'mask-rcnn_r50_fpn_1x_coco.py'))
    for steps in ((), (LoadAnnotations(with_bbox=True), )):
        with pytest.raises(ValueError, match=r"MaskRCNN needs gt_instances with masks .* with_bbox=True, "
                                             r"with_mask=True\)"):
            RobustTestHook(attack=attack, score=False).before_test(runner(mask_rcnn, *steps))
    wrapped = runner(mask_rcnn, LoadAnnotations(with_bbox=True, with_mask=True))
    RobustTestHook(attack=attack, score=False).before_test(wrapped)
    assert isinstance(wrapped.model, DetRobustModel)
    for box_merge in ('nms', 'wbf'):  # a merge of views merges boxes only: refused, naming the defense
        merge = dict(type='FlipScaleTTA', scales=(1.0,), flip=True, box_merge=box_merge)
        with pytest.raises(ValueError, match=r"MaskRCNN predicts instance masks, which a merge of views cannot "
                                             r"merge.*FlipScaleTTA"):
            DetRobustModel(mask_rcnn, defense=merge)
    retina = build('mmdet', osp.join(MMDET_CONFIGS, 'retinanet', 'retinanet_r18_fpn_1x_coco.py'))
    with pytest.raises(ValueError, match=r"RetinaNet needs gt_instances in the test data: add "
                                         r"dict\(type='LoadAnnotations', with_bbox=True\)"):
        RobustTestHook(attack=attack, score=False).before_test(runner(retina))


def test_losses_that_read_the_epoch_or_live_in_a_teacher_student_pair_are_attacked():
    """TOOD's loss reads the training epoch from the message hub (its warm-up assigner before initial_epoch): the
    attack's loss sees a trained model (the task-aligned assigner) and leaves the hub without an epoch, as a test run
    has it. SoftTeacher is a teacher-student pair: the loss and the features are those of the detector it predicts
    with (its semi_test_cfg.predict_on)."""
    from mmdet.structures import DetDataSample
    from mmengine.logging import MessageHub
    from mmengine.structures import InstanceData

    from mmequi.models.det_robust_model import DetectionLoss
    sample = DetDataSample(metainfo=dict(img_shape=(64, 96), ori_shape=(64, 96), scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[10.0, 10.0, 50.0, 40.0]]), labels=torch.tensor([3]))
    pixels = torch.rand(1, 3, 64, 96) * 255
    tood = build('mmdet', osp.join(MMDET_CONFIGS, 'tood', 'tood_r50_fpn_1x_coco.py'))
    epochs = []
    assigner = tood.bbox_head.get_targets
    tood.bbox_head.get_targets = lambda *a, **k: (assigner(*a, **k), epochs.append(tood.bbox_head.epoch))[0]
    assert torch.isfinite(DetectionLoss(tood, sample)(pixels)).all()
    assert epochs and epochs[0] >= tood.bbox_head.initial_epoch
    assert MessageHub.get_current_instance().get_info('epoch') is None
    pair = build('mmdet', osp.join(MMDET_CONFIGS, 'soft_teacher',
                                   'soft-teacher_faster-rcnn_r50-caffe_fpn_180k_semi-0.1-coco.py'))
    objective = DetectionLoss(pair, sample)
    assert objective.model is getattr(pair, pair.semi_test_cfg['predict_on']) and torch.isfinite(objective(pixels)).all()
    features = DetRobustModel(pair, score=False).feature_fn(pixels)
    assert features.shape[1] == 256
