"""``overparam theory ...`` sub-commands (filled in by the theory work)."""
