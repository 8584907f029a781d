# The fast preset, then the flip merge by weighted boxes fusion (the detectors' candidate, issue #22): purified as
# `equivariance_fast` purifies, then the boxes predicted on the purified image and on its mirror are fused (mmdet's
# weighted_boxes_fusion: a box both views predict keeps the mean of its scores, a box one view predicts half its
# score). Adaptive attacks go through both views.
_base_ = ['./equivariance_fast.py']
defense = dict(_delete_=True, type='PurifiedTTA', purifier={{_base_.defense}},
               tta=dict(type='FlipScaleTTA', scales=(1.0,), flip=True, box_merge='wbf'))
