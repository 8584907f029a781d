# CosPGD (Agnihotri et al., ICML 2024; segmentation only): PGD on the pixel CE weighted by cos(softmax, one-hot label).
# L∞, ε = 4/255, step 1/255, 50 steps.
attack = dict(type='PGD', seg_loss='cospgd', eps=4, step_size=1, steps=50, norm='linf', random_start=True)
