"""``overparam empirical ...`` sub-commands (filled in by the empirical work)."""
