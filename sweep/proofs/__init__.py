"""Computer-assisted proofs of critical points of the closed-form loss: enclosures of F,
its gradient and its Hessian in ball arithmetic (`enclosures.py`) and the certificate
(`certificate.py`: Krawczyk existence and uniqueness, the Hessian's inertia on the whole box,
an enclosure of F)."""

from .certificate import Certificate as Certificate
from .certificate import certify as certify
