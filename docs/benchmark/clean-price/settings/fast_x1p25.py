# Lever (issue #22): the fast preset with a ×1.25 rescale (aspect jitter 0.8–1.2) as its one view: inside the
# demo segmentors' training scales (RandomResize ratio 0.75–1.5), where the fast preset's ×2 is outside them.
defense = dict(type='EquivariancePurifier', transforms=[dict(type='Resize', scale=1.25, aspect_jitter=(0.8, 1.2))],
               steps=5, max_view_area=1.0, eps=6, step_size=255, norm='linf', random_start=True, noise=True)
