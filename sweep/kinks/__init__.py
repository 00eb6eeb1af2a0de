"""Exact outcomes on finite data, where minima sit on kinks.

The empirical loss of a ReLU-like network is piecewise smooth: a (neuron, data point) pair
whose pre-activation is 0 is a kink. `finish_shallow.finish` moves a stalled depth-2 run
onto the exact stationary point of its piece, and `shallow.verdict` classifies it by
Wu, Simsek & Ged's conditions (directional stationarity, escape neurons). `deep` does
both for deeper networks, piece by piece. `perturb` is the independent check: random
perturbations around a point.
"""
