# Faster R-CNN on a narrow ResNet-18 + FPN (64 channels), from mmdet's Faster R-CNN R50-FPN base: small enough
# to train from scratch on 2 CPU cores. BN is trained (no frozen stages: there are no pretrained weights), and
# anchors start at 16 px for the small objects of the synthetic test bed. num_classes is set by the dataset.
_base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py']
model = dict(
    backbone=dict(depth=18, base_channels=32, stem_channels=32, frozen_stages=-1, norm_eval=False,
                  init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64, anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256)))
