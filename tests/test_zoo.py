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


def test_detr_style_losses_get_what_they_need_in_eval_numbers():
    """Deformable DETR's loss needs the encoder's outputs, which the detector builds only when flagged as training:
    the attack's loss flags the modules (not normalisation, dropout or attention dropout) for the call, so it runs;
    it has no randomness left (the same value under another seed: its dropouts, p = 0.1, stay off) and every flag is
    as it was afterwards."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from mmequi.models.det_robust_model import DetectionLoss
    torch.manual_seed(0)
    model = build('mmdet', osp.join(MMDET_CONFIGS, 'deformable_detr', 'deformable-detr_r50_16xb2-50e_coco.py'))
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
    assert counts == {'ok': 1, 'refused': 0, 'fails': 0, 'out of scope': 1, 'not run yet': 1}
    table = (tmp_path / 'out' / 'README.md').read_text()
    assert '| mmseg | fcn | `fcn_r18-d8_4xb2-80k_cityscapes-769x769.py` | ✓ |' in table
    assert '| mmseg | mask2former |' in table and 'not run yet' in table
