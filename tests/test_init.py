import jax
import numpy as np

from sweep.init import initial_weights, run_key


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
    from sweep.starts import _MINIBATCH_ORDER, CellArgs, run_keys

    runs = np.array([0, 5, 999, 123456])
    keys, order = run_keys(CellArgs(3, 6, 7, 6, 0.4, 0.8), runs)
    for i, r in enumerate(runs):
        key = run_key(3, 6, 7, 6, int(r))
        np.testing.assert_array_equal(keys[i], jax.random.key_data(key))
        minibatches = jax.random.fold_in(key, _MINIBATCH_ORDER)
        np.testing.assert_array_equal(order[i], jax.random.key_data(minibatches))
