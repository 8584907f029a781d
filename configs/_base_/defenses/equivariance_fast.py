# The fast preset: Algorithm 1 with one view (the ×2 rescale with aspect jitter, capped at the image's own area) and
# T = 5 steps; ε_v = 6/255, η = 1, annealed noise, random start as the reference. About 1/20 of the reference's cost
# on the demo models. Chosen on a development split of the Cityscapes-format demo model (seed 7, 20 images, not the
# reported val split): it recovered 75 % of PGD's mIoU loss there, the reference 73 % (docs/benchmark/README.md,
# where it is measured against the reference on the val splits of all three demo models and under BPDA).
defense = dict(type='EquivariancePurifier', num_views=1, steps=5, max_view_area=1.0, eps=6, step_size=255,
               norm='linf', random_start=True, noise=True)
