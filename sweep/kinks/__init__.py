"""Exact outcomes on finite data, where minima sit on kinks.

The empirical loss of a ReLU-like network is piecewise smooth: a (neuron, data point) pair
whose pre-activation is 0 is a kink. For one hidden layer `finish_shallow.finish` moves a
stalled run onto the exact stationary point of its piece and `shallow.verdict` classifies
it by Wu, Simsek & Ged's conditions (directional stationarity, escape neurons). For deeper
nets `finish_deep` and `deep` do the same piece by piece (`pieces`). `zigzag` finds the
pairs a stalled run crosses back and forth; `perturb` is the independent check: random
perturbations around a point.
"""
