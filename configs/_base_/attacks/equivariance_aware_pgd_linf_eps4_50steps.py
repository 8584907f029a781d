# Adaptive: PGD on task loss + λ·(the defense's own objective on the perturbed image: the equivariance score for the
# equivariance purifier) over the defense's own random views; L∞, ε = 4/255, step 1/255, 50 steps (pixel units of
# the 0–255 image). Needs a defense. λ sweep: --attack-opts lam=10.
attack = dict(type='EquivarianceAwarePGD', lam=1.0, eps=4, step_size=1, steps=50, norm='linf', random_start=True)
