# Baseline: the detector's own flip TTA with its boxes merged by weighted boxes fusion instead of NMS (two views:
# the image and its mirror, 2 forwards; no pixel changes). A segmentor merges as `tta_flip` does.
defense = dict(type='FlipScaleTTA', scales=(1.0,), flip=True, box_merge='wbf')
