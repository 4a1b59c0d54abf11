"""``overparam theory yin``: the Yin et al. recursion and halting-time bound (to be written)."""
