"""Objectives as pure JAX functions of (params, data): the closed-form population loss
(`gaussian.py`, `leaky.py`, wrapped for training by `population.py`) and the empirical
loss of a network on a data set (`network.py`).

An objective offers `param_shape()`, `init(key, scale, dtype)`, `loss`, `loss_and_grad`
and `hessian` of (params, data), the Hessian with respect to the flattened params, and
`watch(params, data)`: a condition training records if it ever holds (a kink entering
1-D data). It is hashable, so jitted code takes it as a static argument.
"""

from . import gaussian as gaussian
from . import kernels as kernels
from . import leaky as leaky
from .kernel_loss import KernelLoss as KernelLoss
from .network import Network as Network
from .population import PopulationLoss as PopulationLoss
