# PGD, L∞, ε = 4/255, step 1/255, 50 steps, random start: the standard protocol of docs/method.md.
# ε and steps are in pixel units of the 0–255 image (eps=4 means 4/255 of the range).
attack = dict(type='PGD', eps=4, step_size=1, steps=50, norm='linf', random_start=True)
