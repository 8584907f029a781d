# Adaptive: PGD differentiated through the unrolled purifier (all T steps, second-order terms kept); L∞, ε = 4/255,
# step 1/255, 50 steps (pixel units of the 0–255 image). Needs a defense; small models only (memory, time).
attack = dict(type='FullGradientPGD', eot=1, eps=4, step_size=1, steps=50, norm='linf', random_start=True)
