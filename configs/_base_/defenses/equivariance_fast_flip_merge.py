# The fast preset, then the flip merge (the detectors' candidate, issue #22): the input is purified as
# `equivariance_fast` purifies it (one ×2 view, T = 5, ε_v = 6/255), and the prediction on the purified input is
# merged over the image and its mirror, as `tta_flip` merges it (a detector: NMS over both views' boxes). Adaptive
# attacks go through both.
_base_ = ['./equivariance_fast.py']
defense = dict(_delete_=True, type='PurifiedTTA', purifier={{_base_.defense}},
               tta=dict(type='FlipScaleTTA', scales=(1.0,), flip=True))
