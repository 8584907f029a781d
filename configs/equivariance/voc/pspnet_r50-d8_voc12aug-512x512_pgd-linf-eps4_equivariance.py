# PSPNet-R50-D8 (PASCAL VOC 2012 aug, 512×512, 40k; 77.29 mIoU clean) from the official mmseg model zoo, evaluated
# under PGD (L∞, ε = 4/255, 50 steps) and defended by the equivariance purifier (reference defaults). Clean or
# undefended runs of the same config:
#   python tools/test.py configs/equivariance/voc/pspnet_r50-d8_voc12aug-512x512_pgd-linf-eps4_equivariance.py \
#       [--attack none] [--defense none]
# (the checkpoint defaults to load_from below, the official weights; pass another as the second argument).
# Run here: the pspnet family passes through the two config lines in the model-zoo matrix (docs/zoo: random
# weights, one ~320×192 test-bed image, CPU); this config, at its real size with the official weights, needs a GPU.
_base_ = [
    'mmseg::pspnet/pspnet_r50-d8_4xb4-40k_voc12aug-512x512.py',
    '../../_base_/attacks/pgd_linf_eps4_50steps.py', '../../_base_/defenses/equivariance.py'
]
custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)
load_from = 'https://download.openmmlab.com/mmsegmentation/v0.5/pspnet/pspnet_r50-d8_512x512_40k_voc12aug/pspnet_r50-d8_512x512_40k_voc12aug_20200613_161222-ae9c1b8c.pth'  # noqa: E501
custom_hooks = [dict(type='RobustTestHook', seed=0)]
