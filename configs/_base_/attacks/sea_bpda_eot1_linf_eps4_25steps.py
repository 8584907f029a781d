# Adaptive SEA: the ensemble's four losses, each through the defense with BPDA + EOT (one purifier draw per step) and
# APGD, 25 steps each with the progressive radius; per image the candidate whose *defended* prediction lowers the
# running mIoU most. L∞, ε = 4/255. 100 purifier runs per image.
attack = dict(type='SegEnsemble', losses=['masked_ce', 'balanced_ce', 'js', 'cospgd'], steps=25, eps=4, norm='linf',
              radii=[2.0, 1.5, 1.0], radius_fractions=[0.3, 0.3, 0.4], select='miou', through_defense=True, eot=1)
