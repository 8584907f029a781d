# MIM (momentum 0.5), L∞, ε = 4/255, step 1/255, 50 steps (pixel units of the 0–255 image).
attack = dict(type='MIM', momentum=0.5, eps=4, step_size=1, steps=50, norm='linf', random_start=True)
