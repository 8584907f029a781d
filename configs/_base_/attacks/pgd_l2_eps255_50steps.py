# PGD, L2, ε = 255 (= 1.0 on [0, 1] images), step 25.5, 50 steps, random start (pixel units of the 0–255 image).
attack = dict(type='PGD', eps=255, step_size=25.5, steps=50, norm='l2', random_start=True)
