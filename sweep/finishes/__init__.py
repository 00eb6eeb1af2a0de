"""Finishes: what takes a run from gradient descent's slow tail to a converged point.

- `basin.py`: Newton's method in place of gradient descent's linear tail;
- `polish.py`: the float64 Newton polish (dense, or matrix-free above `krylov.DENSE_LIMIT`);
- `krylov.py`: matrix-free linear algebra on a Hessian (products, CG, Lanczos).

The finishes of runs that stall on kinks of a loss on data live in `sweep/kinks/`.
"""
