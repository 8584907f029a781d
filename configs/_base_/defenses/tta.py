# Baseline: the model's own test-time augmentation (two scales, each mirrored: four views, 6.5 forwards in units of
# the image's area), its softmax averaged as mmseg's SegTTAModel does; no pixel changes. Adaptive attacks go through
# the merge (BPDA is exact here: the purification is the identity).
defense = dict(type='FlipScaleTTA', scales=(1.0, 1.5), flip=True)
