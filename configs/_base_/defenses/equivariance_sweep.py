# The equivariance purifier for K / T / ε_v sweeps: override from the command line, e.g.
#   python tools/test.py CONFIG CHECKPOINT --defense equivariance_sweep --defense-opts num_views=4 steps=10 eps=8
defense = dict(type='EquivariancePurifier', num_views=8, eps=6, steps=20, step_size=255, norm='linf',
               random_start=True, noise=True, transforms=None)
