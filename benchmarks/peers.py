"""What users write instead of `sweep`: honest implementations of the same protocol.

Every peer trains from the same initial weights, in float64, with the same closed-form
gradient (autodiff through arccos gives NaN at the global minimum, where the angle is 0)
and the same stopping rule: a run stops at its first point with |grad F| <= tol, or after
max_steps updates. Each returns the final weights (B, n, d) and the updates applied (B,).
"""

import jax
import jax.numpy as jnp
import numpy as np
import torch

TWO_PI = 2.0 * np.pi


def numpy_gradient(w, v):
    """dF/dW for one run, as in the papers' own code (NumPy, one run at a time)."""
    norm_w = np.linalg.norm(w, axis=1)
    norm_v = np.linalg.norm(v, axis=1)
    cos_ww = np.clip(w @ w.T / np.outer(norm_w, norm_w), -1.0, 1.0)
    cos_wv = np.clip(w @ v.T / np.outer(norm_w, norm_v), -1.0, 1.0)
    sin_ww = np.sqrt(1.0 - cos_ww**2)
    sin_wv = np.sqrt(1.0 - cos_wv**2)
    radial = (sin_ww @ norm_w - sin_wv @ norm_v)[:, None] * w / norm_w[:, None]
    linear = (np.pi - np.arccos(cos_ww)) @ w - (np.pi - np.arccos(cos_wv)) @ v
    return (radial + linear) / TWO_PI


def numpy_per_run(initial, teacher, step_size, tol, max_steps):
    """One run after the other, each until it converges."""
    teacher = np.asarray(teacher)
    finals, steps = [], []
    for w in np.asarray(initial):
        w = w.copy()
        for step in range(max_steps + 1):
            g = numpy_gradient(w, teacher)
            if step == max_steps or np.sqrt(np.sum(g * g)) <= tol:
                break
            w -= step_size * g
        finals.append(w)
        steps.append(step)
    return np.stack(finals), np.array(steps)


def torch_gradient(w, v):
    """dF/dW for a batch of runs w (B, n, d); v (k, d) is shared."""
    norm_w = torch.linalg.vector_norm(w, dim=2)
    norm_v = torch.linalg.vector_norm(v, dim=1)
    cos_ww = (w @ w.transpose(1, 2) / (norm_w[:, :, None] * norm_w[:, None, :])).clamp(-1, 1)
    cos_wv = (w @ v.T / (norm_w[:, :, None] * norm_v[None, None, :])).clamp(-1, 1)
    sin_ww = torch.sqrt(1.0 - cos_ww**2)
    sin_wv = torch.sqrt(1.0 - cos_wv**2)
    radial = (sin_ww @ norm_w[:, :, None] - sin_wv @ norm_v[:, None]) * w / norm_w[:, :, None]
    linear = (torch.pi - torch.arccos(cos_ww)) @ w - (torch.pi - torch.arccos(cos_wv)) @ v
    return (radial + linear) / TWO_PI


def torch_lockstep(initial, teacher, step_size, tol, max_steps, check_every=50):
    """All runs of a cell in one tensor; converged runs are frozen; stop when all are."""
    w = torch.tensor(np.asarray(initial), dtype=torch.float64)
    v = torch.tensor(np.asarray(teacher), dtype=torch.float64)
    steps = torch.zeros(w.shape[0], dtype=torch.int64)
    running = torch.ones(w.shape[0], dtype=torch.bool)
    with torch.no_grad():
        for step in range(max_steps + 1):
            g = torch_gradient(w, v)
            running &= torch.sqrt((g * g).sum(dim=(1, 2))) > tol
            if step == max_steps or (step % check_every == 0 and not running.any()):
                break
            w -= step_size * g * running[:, None, None]
            steps += running
    return w.numpy(), steps.numpy()


def jax_gradient(w, v):
    """dF/dW for one run, in jax.numpy (vmapped over runs by `jax_lockstep`)."""
    norm_w = jnp.linalg.norm(w, axis=1)
    norm_v = jnp.linalg.norm(v, axis=1)
    cos_ww = jnp.clip(w @ w.T / jnp.outer(norm_w, norm_w), -1.0, 1.0)
    cos_wv = jnp.clip(w @ v.T / jnp.outer(norm_w, norm_v), -1.0, 1.0)
    sin_ww = jnp.sqrt(jnp.maximum(1.0 - cos_ww**2, 0.0))
    sin_wv = jnp.sqrt(jnp.maximum(1.0 - cos_wv**2, 0.0))
    radial = (sin_ww @ norm_w - sin_wv @ norm_v)[:, None] * w / norm_w[:, None]
    linear = (jnp.pi - jnp.arccos(cos_ww)) @ w - (jnp.pi - jnp.arccos(cos_wv)) @ v
    return (radial + linear) / TWO_PI


def jax_lockstep(initial, teacher, step_size, tol, max_steps):
    """`vmap` over all runs of a cell inside one jitted loop; no refill."""

    @jax.jit
    def train(w, v):
        def cond(carry):
            step, _, _, running = carry
            return (step <= max_steps) & jnp.any(running)

        def body(carry):
            step, w, steps, running = carry
            g = jax.vmap(jax_gradient, (0, None))(w, v)
            running = running & (jnp.sqrt(jnp.sum(g * g, axis=(1, 2))) > tol)
            running = running & (step < max_steps)
            w = w - step_size * g * running[:, None, None]
            return step + 1, w, steps + running, running

        batch = w.shape[0]
        start = (0, w, jnp.zeros(batch, jnp.int32), jnp.ones(batch, bool))
        _, w, steps, _ = jax.lax.while_loop(cond, body, start)
        return w, steps

    w, steps = train(jnp.asarray(initial), jnp.asarray(teacher))
    return np.asarray(w), np.asarray(steps)
