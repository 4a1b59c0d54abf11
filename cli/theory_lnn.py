"""``overparam theory lnn``: width-K linear network table, closed forms vs Monte Carlo (to be written)."""
