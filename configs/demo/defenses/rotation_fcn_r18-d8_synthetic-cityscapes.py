# The rotation self-supervision baseline for the Cityscapes-format demo FCN, with its head (checkpoints/README.md):
#   python tools/test.py configs/demo/fcn_r18-d8_synthetic-cityscapes.py checkpoints/fcn_r18-d8_synthetic-cityscapes.pth \
#       --attack pgd_linf_eps4_50steps --defense configs/demo/defenses/rotation_fcn_r18-d8_synthetic-cityscapes.py
_base_ = ['../../_base_/defenses/rotation.py']
defense = dict(head='checkpoints/rotation-head_fcn_r18-d8_synthetic-cityscapes.pth')
