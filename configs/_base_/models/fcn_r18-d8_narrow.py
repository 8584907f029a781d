# FCN on a narrow dilated ResNet-18 (output stride 8), from mmseg's FCN-R50-D8 base: a model small enough to
# train on 2 CPU cores. num_classes and data_preprocessor.size are set by the dataset config.
_base_ = ['mmseg::_base_/models/fcn_r50-d8.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(depth=18, stem_channels=16, base_channels=16, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=128, channels=64, norm_cfg=norm_cfg),
    auxiliary_head=None)
