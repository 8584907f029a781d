# Baseline: the invariance defense: the same views and optimisation as the equivariance purifier, but each view's
# features are global-average-pooled before the cosine (no spatial constraint).
defense = dict(type='InvariancePurifier', num_views=8, eps=6, steps=20, step_size=255, norm='linf',
               random_start=True, noise=True)
