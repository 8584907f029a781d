# Faster R-CNN R50-FPN 1x (PASCAL VOC 07+12; 80.4 AP50 clean) from the official mmdet model zoo, evaluated under PGD
# on the detector's training loss (L∞, ε = 4/255, 50 steps) and defended by the equivariance purifier on the FPN
# outputs (reference defaults). Other settings:
#   python tools/test.py configs/equivariance/voc/faster-rcnn_r50_fpn_1x_voc0712_pgd-linf-eps4_equivariance.py \
#       [--attack none|dag_linf_eps4_50steps] [--defense none]
# (the checkpoint defaults to load_from below, the official weights; pass another as the second argument).
# Run here: the faster_rcnn family passes through the two config lines in the model-zoo matrix (docs/zoo: random
# weights, one ~320×192 test-bed image, CPU); this config, at its real size with the official weights, needs a GPU.
_base_ = [
    'mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py',
    '../../_base_/attacks/pgd_linf_eps4_50steps.py', '../../_base_/defenses/equivariance.py'
]
custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)
load_from = 'https://download.openmmlab.com/mmdetection/v2.0/pascal_voc/faster_rcnn_r50_fpn_1x_voc0712/faster_rcnn_r50_fpn_1x_voc0712_20220320_192712-54bef0f3.pth'  # noqa: E501
custom_hooks = [dict(type='RobustTestHook', seed=0)]
