"""The error of the Gauss-Hermite kernels against mpmath: `python benchmarks/quadrature_error.py`.

For each activation without a closed form (tanh, sigmoid, softplus, gelu, silu) and for
erf (whose closed form is then the reference too), E[s(a.x) s(b.x)] is computed by
`sweep.objectives.kernels.Quadrature` with each rule (the trapezoid rule the kernels use,
and Gauss-Hermite for comparison) at several node counts, and by mpmath's two-dimensional
tanh-sinh quadrature at 20 digits, on a grid of norms |a|, |b| and cosines. Writes
`docs/generated/quadrature.md`: per activation, rule and node count, the largest relative
error over the grid, and over its part with norms <= 1.5.
"""

import argparse
import itertools
import time
from pathlib import Path

import jax
import mpmath as mp
import numpy as np
from provenance import stamp  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

from sweep.objectives import kernels  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RULES = tuple(
    [("trapezoid", n) for n in (48, 64, 80, 96, 128)] + [("hermite", n) for n in (64, 96, 128, 192)]
)
NORMS = ((0.5, 1.0), (1.0, 1.0), (1.5, 1.0), (2.0, 1.0), (3.0, 3.0))
COSINES = (-0.6, 0.3, 0.99)
REFERENCE = {
    "tanh": mp.tanh,
    "sigmoid": lambda z: 1 / (1 + mp.exp(-z)),
    "softplus": lambda z: mp.log1p(mp.exp(z)),
    "gelu": lambda z: z * mp.ncdf(z),
    "silu": lambda z: z / (1 + mp.exp(-z)),
    "erf": lambda z: mp.erf(z / mp.sqrt(2)),
}


def reference(fn, norm_a, norm_b, cos) -> float:
    """E[s(u1) s(u2)] to 25 digits: u1 = |a| z1, u2 = |b| (cos z1 + sin z2)."""
    norm_a, norm_b, cos = mp.mpf(norm_a), mp.mpf(norm_b), mp.mpf(cos)
    sin = mp.sqrt(1 - cos * cos)

    def integrand(z1, z2):
        weight = mp.exp(-(z1 * z1 + z2 * z2) / 2) / (2 * mp.pi)
        return weight * fn(norm_a * z1) * fn(norm_b * (cos * z1 + sin * z2))

    line = [-mp.inf, 0, mp.inf]
    return float(mp.quad(integrand, line, line))


def measure(name: str, quick: bool) -> dict:
    """{(rule, nodes): (largest error, largest with norms <= 1.5)} for one activation."""
    points = list(itertools.product(NORMS[:3] if quick else NORMS, COSINES))
    worst = {rule: [0.0, 0.0] for rule in RULES}
    for (norm_a, norm_b), cos in points:
        exact = reference(REFERENCE[name], norm_a, norm_b, cos)
        sa, sb, c = norm_a**2, norm_b**2, norm_a * norm_b * cos
        for rule_name, nodes in RULES:
            fn = kernels.ACTIVATIONS.get(name) or (lambda z: jax.scipy.special.erf(z / np.sqrt(2)))
            rule = kernels.Quadrature(name, fn, nodes, rule_name)
            value = float(rule.pairs(jnp.asarray(sa), jnp.asarray(sb), jnp.asarray(c)))
            error = abs(value - exact) / max(abs(exact), 1e-300)
            worst[rule_name, nodes][0] = max(worst[rule_name, nodes][0], error)
            if max(norm_a, norm_b) <= 1.5:
                worst[rule_name, nodes][1] = max(worst[rule_name, nodes][1], error)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="norms <= 1.5 only")
    args = parser.parse_args()
    mp.mp.dps = 20
    started = time.time()
    lines = [
        "| activation | rule | nodes per axis | nodes in all | largest relative error,"
        " norms <= 1.5 | largest, norms <= 3 |",
        "|---|---|---|---|---|---|",
    ]
    for name in REFERENCE:
        for (rule, nodes), (everywhere, near) in measure(name, args.quick).items():
            far = "not measured" if args.quick else f"{everywhere:.1e}"
            size = len(kernels.product_rule(nodes, rule)[0])
            lines.append(f"| {name} | {rule} | {nodes} | {size} | {near:.1e} | {far} |")
        print(lines[-1], flush=True)
    grid = ", ".join(f"({a}, {b})" for a, b in NORMS)
    text = "\n".join(
        [
            stamp("benchmarks/quadrature_error.py"),
            f"Norms (|a|, |b|): {grid}; cosines {', '.join(map(str, COSINES))}. Reference: mpmath "
            f"`quad` (tanh-sinh) in two dimensions at {mp.mp.dps} digits. "
            f"{time.time() - started:.0f} s.",
            "",
            *lines,
            "",
        ]
    )
    out = ROOT / "docs" / "generated" / "quadrature.md"
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
