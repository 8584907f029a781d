# Baseline at the fast preset's budget (equivariance_fast.py): the invariance objective (pooled features) with the same
# single ×2-rescale view, T = 5, ε_v = 6/255, η = 1, annealed noise, random start. Compares objectives at equal cost.
defense = dict(type='InvariancePurifier', num_views=1, steps=5, max_view_area=1.0, eps=6, step_size=255,
               norm='linf', random_start=True, noise=True)
