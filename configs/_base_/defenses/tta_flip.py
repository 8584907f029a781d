# Baseline: the model's own test-time augmentation, flip only (two views: the image and its mirror, 2 forwards).
# A segmentor averages the two softmax maps (mmseg's SegTTAModel rule); a detector averages the two views' feature
# maps where its heads read them (its boxes merge by NMS, which is not differentiable). No pixel changes; adaptive
# attacks go through the merge.
defense = dict(type='FlipScaleTTA', scales=(1.0,), flip=True)
