# The rotation self-supervision baseline at the fast preset's budget (T = 5 steps of Algorithm 1's loop instead of 20;
# ε_v, η, noise and random start as the reference), with the demo FCN's head (checkpoints/README.md).
_base_ = ['./rotation_fcn_r18-d8_synthetic-cityscapes.py']
defense = dict(steps=5)
