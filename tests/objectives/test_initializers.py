import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweep.engine.starts import initial_bits
from sweep.objectives import Network, PopulationLoss
from sweep.objectives.initializers import initial_weights, normal_from_bits, replay_bits, run_key


def test_run_key_is_a_pure_function_of_seed_cell_and_run():
    a = jax.random.key_data(run_key(0, 6, 6, 6, 37))
    b = jax.random.key_data(run_key(0, 6, 6, 6, 37))
    np.testing.assert_array_equal(a, b)
    others = [
        run_key(1, 6, 6, 6, 37),
        run_key(0, 7, 6, 6, 37),
        run_key(0, 6, 7, 6, 37),
        run_key(0, 6, 6, 6, 38),
    ]
    for other in others:
        assert not np.array_equal(a, jax.random.key_data(other))


def test_batched_keys_equal_single_keys():
    runs = np.arange(8)
    batched = jax.vmap(lambda r: run_key(3, 6, 7, 6, r))(runs)
    for r in runs:
        np.testing.assert_array_equal(
            jax.random.key_data(batched[r]), jax.random.key_data(run_key(3, 6, 7, 6, int(r)))
        )


def test_xavier_scale():
    d = 10
    w = initial_weights(run_key(0, 10, 10, 10, 0), 2000, d, 1 / np.sqrt(d))
    assert w.dtype == np.float64
    assert abs(float(w.var()) - 1 / d) < 0.005


def test_the_quickly_compiled_start_keys_are_the_run_keys():
    from sweep.engine.starts import MINIBATCH_ORDER, CellArgs, run_keys

    runs = np.array([0, 5, 999, 123456])
    keys, order = run_keys(CellArgs(3, 6, 7, 6, 0.4, 0.8), runs)
    for i, r in enumerate(runs):
        key = run_key(3, 6, 7, 6, int(r))
        np.testing.assert_array_equal(keys[i], jax.random.key_data(key))
        minibatches = jax.random.fold_in(key, MINIBATCH_ORDER)
        np.testing.assert_array_equal(order[i], jax.random.key_data(minibatches))


@pytest.mark.slow
def test_the_start_keys_are_traced_once_for_every_cell(monkeypatch):
    """Their shapes depend only on the batch size, so releasing a cell's programs keeps
    them; the next cell's keys are its own."""
    from sweep import programs
    from sweep.engine import starts

    traced = []
    monkeypatch.setattr(starts, "run_key", lambda *a: traced.append(a) or run_key(*a))
    runs = np.arange(37) * 11  # a batch size no other test uses
    starts.run_keys(starts.CellArgs(3, 6, 7, 6, 0.4, 0.8), runs)
    programs.release_programs()
    keys, _ = starts.run_keys(starts.CellArgs(5, 9, 10, 9, 0.4, 0.8), runs)
    assert len(traced) == 1
    for i, r in enumerate(runs):
        np.testing.assert_array_equal(keys[i], jax.random.key_data(run_key(5, 9, 10, 9, int(r))))


def test_normals_from_recorded_bits_are_jaxs_own_draws_bit_for_bit():
    """`normal_from_bits` follows JAX's sampler step by step: if JAX ever draws otherwise,
    this fails, and the engine's starts (`starts.py`) would have moved."""
    jitted = jax.jit(normal_from_bits, static_argnums=1)
    cases = [(0, (20, 20), jnp.float64), (7, (3,), jnp.float64), (11, (5, 4), jnp.float32),
             (2, (), jnp.float64)]  # fmt: skip
    for seed, shape, dtype in cases:
        key = jax.random.key(seed)
        unsigned = np.dtype(f"uint{np.dtype(dtype).itemsize * 8}")
        bits = jax.random.bits(key, shape, unsigned)
        want = np.asarray(jax.random.normal(key, shape, dtype))
        for got in (normal_from_bits(bits, dtype), jitted(bits, dtype)):
            got = np.asarray(got)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got.view(unsigned), want.view(unsigned))


def _initial_points(objective, keys):
    """objective.init of each key (key data (B, 2)), drawn by `jax.random.normal`."""

    def one(key):
        return objective.init(jax.random.wrap_key_data(key), 0.4, jnp.float64)

    return np.asarray(jax.jit(jax.vmap(one))(keys))


def test_a_start_from_recorded_bits_is_the_init_of_the_runs_key():
    """Every objective's initial point, its draws hashed in one program and turned into
    floats in another, equals its plain `init` bit for bit: the closed form, and a deep
    network with biases (several draws, each from its own key)."""
    keys = jax.vmap(lambda r: jax.random.key_data(run_key(0, 5, 7, 5, r)))(np.arange(6))
    deep = Network(n=7, d=5, depth=3, biases=True, train_output=True, bias_scale=0.3)
    for objective in (PopulationLoss(n=7, d=5), deep):
        bits = jax.device_get(initial_bits(keys, objective))
        # Inside vmap each run's bits are its own rows.
        replayed = np.asarray(jax.jit(jax.vmap(
            lambda key, bits, objective=objective: objective.init(
                jax.random.wrap_key_data(key), 0.4, jnp.float64, replay_bits(bits))
        ))(keys, bits))  # fmt: skip
        plain = _initial_points(objective, keys)
        np.testing.assert_array_equal(replayed.view(np.uint64), plain.view(np.uint64))
