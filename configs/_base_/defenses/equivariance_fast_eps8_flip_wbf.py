# The detectors' preset (issue #22, docs/benchmark/clean-price round 8): the fast preset's purifier (one ×2 view
# capped at the image's area, T = 5) with a budget of ε_v = 8/255, then the boxes predicted on the purified image and
# on its mirror fused by weighted boxes fusion (a box both views predict keeps the mean of its scores, a box one view
# predicts half its score). Chosen on the COCO-format development split (seed 7): the clean price of the fast preset
# gone (0.834 against 0.834), more of PGD's loss recovered (92 % against 74 %) and more kept under the adaptive proxy
# (0.675 against 0.663), for one more forward. Adaptive attacks go through the purifier and both views.
_base_ = ['./equivariance_fast_flip_wbf.py']
defense = dict(purifier=dict(eps=8))
