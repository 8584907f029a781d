# Baseline: the model's own test-time augmentation, flip only (two views: the image and its mirror, 2 forwards).
# A segmentor averages the two softmax maps (mmseg's SegTTAModel rule); a detector merges the two views' boxes by
# NMS (mmdet's DetTTAModel rule), and an adaptive attack raises both views' losses. No pixel changes.
defense = dict(type='FlipScaleTTA', scales=(1.0,), flip=True)
