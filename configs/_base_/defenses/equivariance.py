# The equivariance purifier with the reference defaults of docs/method.md (Algorithm 1): K = 8 reference views,
# T = 20 steps, ε_v = 6/255 (1.5·ε for ε = 4/255), η = 1.0 on [0, 1] images (255 in pixel units: every L∞ step lands
# on a corner of the ε_v box), annealed noise, random start. Measured on the segmentation logits by default.
defense = dict(type='EquivariancePurifier', num_views=8, eps=6, steps=20, step_size=255, norm='linf',
               random_start=True, noise=True)
