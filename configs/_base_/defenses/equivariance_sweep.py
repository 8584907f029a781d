# The equivariance purifier for K / T / ε_v sweeps: override from the command line, e.g.
#   --cfg-options defense.num_views=4 defense.steps=10 defense.eps=8
defense = dict(type='EquivariancePurifier', num_views=8, eps=6, steps=20, step_size=255, norm='linf',
               random_start=True, noise=True, transforms=None)
