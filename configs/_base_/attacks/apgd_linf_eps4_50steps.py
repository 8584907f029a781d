# APGD (Croce & Hein 2020), L∞, ε = 4/255, 50 steps (no step size: the schedule starts at 2ε and halves it per image);
# on the task loss (pixel CE for segmentors, the training loss for detectors). Same cost as 50-step PGD.
attack = dict(type='APGD', eps=4, steps=50, norm='linf', random_start=True)
