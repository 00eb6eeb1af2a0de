"""Objectives as pure JAX functions of (weights, problem)."""

from . import gaussian as gaussian
