# Baseline: uniform noise in the ε_v box (Algorithm 1's random start without any optimisation).
defense = dict(type='RandomNoiseDefense', eps=6, norm='linf')
