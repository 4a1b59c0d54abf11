"""``overparam empirical char-lm``: the char-LM study (to be written)."""
