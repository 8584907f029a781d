"""Models of the mmseg / mmdet zoos through the wrapper (random weights, small inputs): views the model can take,
and the support-matrix tool (tools/zoo.py)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmequi.models import DetRobustModel, SegRobustModel

MMDET_CONFIGS = osp.join(osp.dirname(__import__('mmdet').__file__), '.mim', 'configs')


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
    assert SegRobustModel(seg, score=False).view_divisor is None  # nothing to probe without features to compute
