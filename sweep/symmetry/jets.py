"""Second-order forward differentiation: a value with its gradient and Hessian in m
variables, carried through + - * / sqrt and the arc-cosine kernel.

The reduced loss (`reduced.py`) is a few thousand such operations, each O(m^2) with m the
dimension of a fixed-point space (2 to ~40), so its Hessian costs milliseconds in NumPy
float64, and the same code carries Arb balls (`proofs/symmetric.py`): every operation of
ball arithmetic encloses its exact result, so the jet's Hessian encloses the true one.
The scalar functions come from a `Scalars` object (floats or balls); the gradient and the
Hessian are NumPy arrays or Arb matrices (`outer` picks the product).
"""

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


def outer(a: Any, b: Any) -> Any:
    """a^T b for gradients a, b: NumPy vectors, or Arb row matrices."""
    if isinstance(a, np.ndarray):
        return a[..., :, None] * b[..., None, :]
    return a.transpose() * b


@dataclass
class Jet:
    value: Any
    grad: Any
    hess: Any
    scalars: Any  # sqrt, acos, reciprocal square root... of values (FloatScalars, Balls)

    def apply(self, f0: Any, f1: Any, f2: Any) -> "Jet":
        """f(self) from f's value and first two derivatives at self.value."""
        return Jet(f0, self.grad * f1, self.hess * f1 + outer(self.grad, self.grad) * f2,
                   self.scalars)  # fmt: skip

    def __add__(self, other):
        if isinstance(other, Jet):
            return Jet(self.value + other.value, self.grad + other.grad,
                       self.hess + other.hess, self.scalars)  # fmt: skip
        return Jet(self.value + other, self.grad, self.hess, self.scalars)

    __radd__ = __add__

    def __neg__(self):
        return Jet(-self.value, self.grad * -1, self.hess * -1, self.scalars)

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        if isinstance(other, Jet):
            a, b = self, other
            hess = a.hess * b.value + b.hess * a.value + outer(a.grad, b.grad)
            hess = hess + outer(b.grad, a.grad)
            return Jet(a.value * b.value, a.grad * b.value + b.grad * a.value, hess,
                       self.scalars)  # fmt: skip
        return Jet(self.value * other, self.grad * other, self.hess * other, self.scalars)

    __rmul__ = __mul__

    def reciprocal(self) -> "Jet":
        inverse = 1 / self.value
        return self.apply(inverse, -inverse * inverse, 2 * inverse * inverse * inverse)

    def __truediv__(self, other):
        if isinstance(other, Jet):
            return self * other.reciprocal()
        return self * (1 / other)

    def __rtruediv__(self, other):
        return self.reciprocal() * other


class FloatScalars:
    """Scalar functions in float64 (NumPy arrays of values are allowed: batched jets)."""

    pi = math.pi

    @staticmethod
    def sqrt(x):
        return np.sqrt(x)

    @staticmethod
    def sine(cos):
        """sqrt(1 - c^2), 0 where rounding puts |c| above 1."""
        return np.sqrt(np.maximum(1.0 - np.asarray(cos) ** 2, 0.0))

    @staticmethod
    def acos(x):
        return np.arccos(np.clip(x, -1.0, 1.0))

    @staticmethod
    def curvature(cos):
        """kernel''(c) = 1 / sqrt(1 - c^2); 0 at parallel vectors, the Hessian's limit."""
        gap = 1.0 - np.asarray(cos) ** 2
        return np.where(gap > 0, 1.0 / np.sqrt(np.where(gap > 0, gap, 1.0)), 0.0)


class JetArithmetic:
    """`reduced.Arithmetic` on jets whose values are `scalars`' numbers."""

    def __init__(self, scalars: Any):
        self.scalars = scalars
        self.pi = scalars.pi

    def sqrt(self, x: Jet) -> Jet:
        root = self.scalars.sqrt(x.value)
        return x.apply(root, 1 / (2 * root), -1 / (4 * root * x.value))

    def kernel(self, cos: Jet) -> Jet:
        c = cos.value
        slope = self.pi - self.scalars.acos(c)
        value = self.scalars.sine(c) + slope * c
        return cos.apply(value, slope, self.scalars.curvature(c))


def variables(values: np.ndarray, scalars: Any = FloatScalars) -> list[Jet]:
    """Jets of the independent variables x_0..x_{m-1} at `values` (float64)."""
    m = len(values)
    eye = np.eye(m)
    return [Jet(values[i], eye[i].copy(), np.zeros((m, m)), scalars) for i in range(m)]
