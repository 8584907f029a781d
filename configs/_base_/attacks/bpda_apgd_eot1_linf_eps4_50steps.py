# Adaptive: BPDA (forward through the purifier, identity backward) with the APGD step rule, one purifier draw per step;
# L∞, ε = 4/255, 50 steps; on the task loss.
attack = dict(type='BPDAAPGD', eot=1, eps=4, steps=50, norm='linf', random_start=True)
