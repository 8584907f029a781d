# Lever (issue #22): the fast preset with a ×0.75 rescale (aspect jitter 0.8–1.2) as its one view: the smallest
# of the demo segmentors' training scales.
defense = dict(type='EquivariancePurifier', transforms=[dict(type='Resize', scale=0.75, aspect_jitter=(0.8, 1.2))],
               steps=5, max_view_area=1.0, eps=6, step_size=255, norm='linf', random_start=True, noise=True)
