"""Computer-assisted proofs of critical points of the closed-form loss, in ball arithmetic:
helpers (`balls.py`), enclosures of F, its gradient and its Hessian (`enclosures.py`), the
full-space certificate (`certificate.py`), the proof in a fixed-point space
(`symmetric.py`), the one pipeline every caller proves points through (`pipeline.py`), and
what a minimum becomes with one neuron more (`extra_neuron.py`) or with one of its
neurons split in two (`split_neuron.py`)."""

from .certificate import Certificate as Certificate
from .pipeline import Claim as Claim
from .pipeline import ProofJob as ProofJob
from .pipeline import ProofOutcome as ProofOutcome
from .pipeline import prove_all as prove_all
from .pipeline import prove_point as prove_point
