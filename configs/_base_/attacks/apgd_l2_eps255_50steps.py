# APGD, L2, ε = 255 (= 1.0 on [0, 1] images), 50 steps; on the task loss.
attack = dict(type='APGD', eps=255, steps=50, norm='l2', random_start=True)
