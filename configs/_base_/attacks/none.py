# No attack: clean inputs.
attack = None
