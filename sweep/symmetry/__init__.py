"""Symmetry of the closed-form loss: canonical forms, the isotropy of a point, the loss
reduced to a fixed-point space, the Hessian's isotypic blocks, and critical points found
in fixed-point spaces."""
