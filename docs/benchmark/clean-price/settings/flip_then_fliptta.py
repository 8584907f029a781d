# Round 5: the flip preset, then a merge over the image and its mirror only (one extra forward instead of 5.5).
_base_ = ['../../../../configs/_base_/defenses/equivariance_flip_tta.py']
defense = dict(tta=dict(scales=(1.0, )))
