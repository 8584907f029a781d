# Adaptive: BPDA with one purifier draw per step (forward through the purifier, identity backward); L∞, ε = 4/255,
# step 1/255, 20 steps. The cheaper BPDA used to check that a faster defense setting is not an easier target.
attack = dict(type='BPDA', eot=1, eps=4, step_size=1, steps=20, norm='linf', random_start=True)
