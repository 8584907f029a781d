# Adaptive: BPDA + EOT: forward through the purifier, identity backward, gradient averaged over 4 purifier draws per
# step; L∞, ε = 4/255, step 1/255, 50 steps (pixel units of the 0–255 image). Needs a defense.
attack = dict(type='BPDA', eot=4, eps=4, step_size=1, steps=50, norm='linf', random_start=True)
