# The COCO-format demo detector under PGD on its training loss (L∞, ε = 4/255, 50 steps), defended by the
# equivariance purifier on the FPN outputs:
#   python tools/test.py configs/demo/faster-rcnn_r18_fpn_synthetic-coco_pgd-linf-eps4_equivariance.py \
#       checkpoints/faster-rcnn_r18_fpn_synthetic-coco.pth [--attack none] [--defense none]
_base_ = [
    './faster-rcnn_r18_fpn_synthetic-coco.py',
    '../_base_/attacks/pgd_linf_eps4_50steps.py', '../_base_/defenses/equivariance.py'
]
custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)
load_from = 'checkpoints/faster-rcnn_r18_fpn_synthetic-coco.pth'
custom_hooks = [dict(type='RobustTestHook', seed=0)]
