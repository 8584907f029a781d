# The Voc-format demo model under PGD (L∞, ε = 4/255, 50 steps), defended by the equivariance purifier:
#   python tools/test.py configs/demo/fcn_r18-d8_synthetic-voc_pgd-linf-eps4_equivariance.py \
#       checkpoints/fcn_r18-d8_synthetic-voc.pth [--attack none] [--defense none]
_base_ = [
    './fcn_r18-d8_synthetic-voc.py',
    '../_base_/attacks/pgd_linf_eps4_50steps.py', '../_base_/defenses/equivariance.py'
]
custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)
load_from = 'checkpoints/fcn_r18-d8_synthetic-voc.pth'
custom_hooks = [dict(type='RobustTestHook', seed=0)]
