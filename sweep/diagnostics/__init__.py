"""What is measured at a converged point, in float64: Hessian spectra (`spectrum.py`), the
escape-neuron test (`escape.py`) and the catalogue of distinct points (`catalogue.py`).
Each problem kind's classification, which uses them, lives with the problem
(`sweep/problems/`)."""
