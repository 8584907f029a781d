# PSPNet-R50-D8 (Cityscapes, 512×1024, 80k; 78.55 mIoU clean) from the official mmseg model zoo, evaluated under PGD
# (L∞, ε = 4/255, 50 steps) and defended by the equivariance purifier (reference defaults). Clean or undefended runs
# of the same config:
#   python tools/test.py configs/equivariance/cityscapes/pspnet_r50-d8_cityscapes-512x1024_pgd-linf-eps4_equivariance.py \
#       [--attack none] [--defense none]
# (the checkpoint defaults to load_from below, the official weights; pass another as the second argument).
# Run here: the pspnet family passes through the two config lines in the model-zoo matrix (docs/zoo: random
# weights, one ~320×192 test-bed image, CPU); this config, at its real size with the official weights, needs a GPU.
_base_ = [
    'mmseg::pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    '../../_base_/attacks/pgd_linf_eps4_50steps.py', '../../_base_/defenses/equivariance.py'
]
custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)
load_from = 'https://download.openmmlab.com/mmsegmentation/v0.5/pspnet/pspnet_r50-d8_512x1024_80k_cityscapes/pspnet_r50-d8_512x1024_80k_cityscapes_20200606_112131-2376f12b.pth'  # noqa: E501
custom_hooks = [dict(type='RobustTestHook', seed=0)]
