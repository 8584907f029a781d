# No defense.
defense = None
