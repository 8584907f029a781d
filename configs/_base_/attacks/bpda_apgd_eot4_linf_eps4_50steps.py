# Adaptive: BPDA + EOT with the APGD step rule, the gradient averaged over 4 purifier draws per step (4× the cost of
# the one-draw attack); L∞, ε = 4/255, 50 steps; on the task loss.
attack = dict(type='BPDAAPGD', eot=4, eps=4, steps=50, norm='linf', random_start=True)
