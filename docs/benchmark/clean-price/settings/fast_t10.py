# Lever (issue #22, the detector's worst case): the fast preset with T = 10 purification steps instead of 5
# (20 fwd+bwd passes per image, still under 1/10 of the reference's 266).
defense = dict(type='EquivariancePurifier', num_views=1, steps=10, max_view_area=1.0, eps=6, step_size=255,
               norm='linf', random_start=True, noise=True)
