"""Hyperparameter sweeps per rung (Ray Tune + Optuna + ASHA), hyperparameter laws, recipes.

    sweeper tune search_spaces/tiny_mixtures.yaml --budget 1e13

Importing this package is cheap: Ray, Optuna and MLflow load only in the
modules that run a search (`search`, `mixtures`) or read MLflow (`recipe`).
"""
