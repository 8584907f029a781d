# PGD, L∞, ε = 4/255, step 1/255, 20 steps, random start (pixel units of the 0–255 image).
attack = dict(type='PGD', eps=4, step_size=1, steps=20, norm='linf', random_start=True)
