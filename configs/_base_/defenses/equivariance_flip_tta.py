# The flip preset, then the model's own test-time augmentation (segmentors): the input is purified as
# `equivariance_flip` purifies it (one flip view, T = 5, ε_v = 6/255), and the prediction on the purified input is
# merged over two scales, each mirrored, as `tta` merges it. The merge wins back clean accuracy the correction costs;
# adaptive attacks go through both (docs/benchmark/clean-price/README.md).
_base_ = ['./equivariance_flip.py']
defense = dict(_delete_=True, type='PurifiedTTA', purifier={{_base_.defense}},
               tta=dict(type='FlipScaleTTA', scales=(1.0, 1.5), flip=True))
