"""Budgets to isoFLOP slices to (N, D) per trial, branching costs, and what trials reserve from Ray."""
