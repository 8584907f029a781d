# Lever (issue #22): the fast preset's ×2 rescale without the area cap (the view the model sees is really ×2).
defense = dict(type='EquivariancePurifier', transforms=[dict(type='Resize', scale=2.0, aspect_jitter=(0.8, 1.2))],
               steps=5, eps=6, step_size=255, norm='linf', random_start=True, noise=True)
