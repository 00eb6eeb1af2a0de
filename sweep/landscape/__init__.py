"""Objectives as pure JAX functions of (weights, teacher), and the one a config chooses."""

from dataclasses import dataclass

from . import gaussian as gaussian
from . import leaky as leaky


@dataclass(frozen=True)
class Landscape:
    """The closed-form population loss under Gaussian inputs for the orthonormal teacher:
    ReLU (alpha = 0) or Leaky ReLU with slope alpha for student and teacher alike.

    Hashable, so it can be a static argument of jitted code: one compile per landscape.
    """

    alpha: float = 0.0

    def loss_and_grad(self, weights, teacher):
        if self.alpha:
            return leaky.loss_and_grad_orthonormal(weights, teacher, self.alpha)
        return gaussian.loss_and_grad_orthonormal(weights, teacher)

    def loss(self, weights, teacher):
        if self.alpha:
            return leaky.loss(weights, teacher, self.alpha)
        return gaussian.loss(weights, teacher)

    def hessian(self, weights, teacher):
        if self.alpha:
            return leaky.hessian(weights, teacher, self.alpha)
        return gaussian.hessian(weights, teacher)


RELU = Landscape()


def for_problem(problem):
    """The Landscape of a `config.Problem`."""
    return Landscape(alpha=problem.alpha if problem.activation == "leaky_relu" else 0.0)
