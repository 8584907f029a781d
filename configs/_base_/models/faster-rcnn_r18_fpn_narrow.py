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
        bbox_head=dict(in_channels=64, fc_out_channels=256)),
    # Fewer proposals and sampled RoIs than the R50 defaults (2000/1000, 512): small images, few objects, 2 cores.
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=300), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))
