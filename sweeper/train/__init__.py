"""Training: the shared loop, learning-rate schedules and per-size recipes."""
