# Demo detector for the synthetic COCO-format test bed (python -m testbed coco): Faster R-CNN on a narrow
# ResNet-18 + FPN, trained from scratch on 2 CPU cores.
#   python tools/train.py configs/demo/faster-rcnn_r18_fpn_synthetic-coco.py
_base_ = [
    '../_base_/models/faster-rcnn_r18_fpn_narrow.py', 'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/default_runtime.py', '../_base_/schedules/cpu_det_iters.py'
]
data_root = 'data/synthetic/coco/'
# The six COCO categories the generator draws (testbed.COCO_CLASSES), in COCO id order.
metainfo = dict(classes=('person', 'car', 'stop sign', 'dog', 'bottle', 'clock'))
image_scale = (192, 160)  # (w, h): the generator's image size
model = dict(roi_head=dict(bbox_head=dict(num_classes=len(metainfo['classes']))))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=image_scale, ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline,
                 filter_cfg=dict(filter_empty_gt=True, min_size=4)))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(interval=50),
                     checkpoint=dict(by_epoch=False, interval={{_base_.max_iters}}, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
