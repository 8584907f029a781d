# Lever (issue #22): the fast preset with a horizontal flip as its one view instead of the ×2 rescale: a view
# inside both demo segmentors' training augmentation (RandomFlip), so the model was trained to agree with itself under it.
defense = dict(type='EquivariancePurifier', transforms=[dict(type='HFlip')], steps=5, max_view_area=1.0, eps=6,
               step_size=255, norm='linf', random_start=True, noise=True)
