"""Budgets to isoFLOP slices to (N, D) per trial, and what trials reserve from Ray."""
