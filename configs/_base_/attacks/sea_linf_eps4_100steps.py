# SEA-style ensemble (Croce, Singh, Hein, ECCV 2024; segmentation only): APGD with masked CE, class-balanced CE, JS
# divergence and CosPGD's loss, 100 steps each, radius 2ε → 1.5ε → ε; per image the candidate that lowers the running
# mIoU most. L∞, ε = 4/255. 400 gradient evaluations per image.
attack = dict(type='SegEnsemble', losses=['masked_ce', 'balanced_ce', 'js', 'cospgd'], steps=100, eps=4, norm='linf',
              radii=[2.0, 1.5, 1.0], radius_fractions=[0.3, 0.3, 0.4], select='miou')
