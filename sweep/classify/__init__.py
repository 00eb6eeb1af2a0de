"""Diagnostics of converged points, in float64: Hessian spectra (`spectrum.py`), symmetry
types and canonical forms (`symmetry.py`), the escape-neuron test (`escape.py`) and the
catalogue of distinct points (`catalogue.py`). Each problem kind's classification, which
uses them, lives with the problem (`sweep/problems/`)."""
