# Faster R-CNN R50-FPN 1x (COCO; 37.4 box AP clean) from the official mmdet model zoo, evaluated under PGD on the
# detector's training loss (L∞, ε = 4/255, 50 steps) and defended by the equivariance purifier on the FPN outputs
# (reference defaults). Other settings:
#   python tools/test.py configs/equivariance/coco/faster-rcnn_r50_fpn_1x_coco_pgd-linf-eps4_equivariance.py \
#       [--attack none|dag_linf_eps4_50steps] [--defense none]
# (the checkpoint defaults to load_from below, the official weights; pass another as the second argument).
# Run here: the faster_rcnn family passes through the two config lines in the model-zoo matrix (docs/zoo: random
# weights, one ~320×192 test-bed image, CPU); this config, at its real size with the official weights, needs a GPU.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    '../../_base_/attacks/pgd_linf_eps4_50steps.py', '../../_base_/defenses/equivariance.py'
]
custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)
load_from = 'https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r50_fpn_1x_coco/faster_rcnn_r50_fpn_1x_coco_20200130-047c8118.pth'  # noqa: E501
custom_hooks = [dict(type='RobustTestHook', seed=0)]
