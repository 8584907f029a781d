# Demo model for the synthetic PASCAL VOC 2012-format test bed (python -m testbed voc): FCN on a narrow
# dilated ResNet-18, trained from scratch on 2 CPU cores.
#   python tools/train.py configs/demo/fcn_r18-d8_synthetic-voc.py
_base_ = [
    '../_base_/models/fcn_r18-d8_narrow.py', 'mmseg::_base_/datasets/pascal_voc12.py',
    'mmseg::_base_/default_runtime.py', '../_base_/schedules/cpu_2400iters.py'
]
data_root = 'data/synthetic/voc'
crop_size = (160, 160)
model = dict(data_preprocessor=dict(size=crop_size), decode_head=dict(num_classes=21))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(160, 160), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 160), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
