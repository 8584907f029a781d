# Baseline: rotation self-supervision. Algorithm 1's loop (ε_v = 6/255, T = 20, η = 1, annealed noise, random start)
# minimising the loss of a 4-way rotation head on the model's pooled features. The head belongs to one model: train
# it with tools/train_rotation_head.py and pass its path, e.g. --defense rotation --defense-opts head=HEAD.pth
defense = dict(type='RotationPurifier', head=None, eps=6, steps=20, step_size=255, norm='linf', random_start=True,
               noise=True)
