# Lever (issue #22, the detector): the fast preset at ε_v = 8/255 (fast_epsv8.py), then the flip merge by weighted
# boxes fusion (equivariance_fast_flip_wbf): the larger budget for the worst case, the fusion for the clean price.
defense = dict(type='PurifiedTTA',
               purifier=dict(type='EquivariancePurifier', num_views=1, steps=5, max_view_area=1.0, eps=8,
                             step_size=255, norm='linf', random_start=True, noise=True),
               tta=dict(type='FlipScaleTTA', scales=(1.0,), flip=True, box_merge='wbf'))
