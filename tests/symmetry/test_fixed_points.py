"""The types searched at each k, and Newton in fixed-size batches."""

import jax
import jax.numpy as jnp
import numpy as np

from sweep.symmetry import fixed_points, reduced


def test_thin_triples_are_the_triples_with_a_block_of_one_or_two():
    triples = fixed_points.isotropy_types(12, ("triples",))
    thin = fixed_points.isotropy_types(12, ("thin",))
    assert thin == [t for t in triples if min(t) <= 2]
    assert (1, 1, 10) in thin and (2, 5, 5) in thin and (3, 4, 5) not in thin
    assert all(sum(t) == 12 and list(t) == sorted(t) for t in thin)
    # every p + 1 + q and p + 2 + q at k = 100, without the ~800 others
    at_100 = fixed_points.isotropy_types(100, ("thin",))
    assert (1, 44, 55) in at_100 and (2, 40, 58) in at_100
    assert len(at_100) == 49 + 48


def test_every_triple_up_to_a_k_and_the_thin_ones_above():
    limit = fixed_points.TRIPLES_UP_TO
    assert fixed_points.default_shapes(limit) == ("k", "pairs", "triples")
    assert fixed_points.default_shapes(limit + 1) == ("k", "pairs", "thin")


def test_batches_of_fixed_sizes_give_what_one_batch_gives():
    structure = fixed_points.template((2, 5), 7)
    rng = np.random.default_rng(1)
    # two batches of 256, the second padded
    thetas = rng.uniform(-1, 1, (300, len(structure.parameters)))
    sizes = np.repeat([np.asarray(structure.sizes, float)], 300, axis=0)
    theta, norm = fixed_points.newton_in_batches(thetas, sizes, 7, structure.signature, None)
    with jax.enable_x64(True):

        def one(start, size):
            return reduced.newton(start, size, 7.0, structure.signature)

        whole, whole_norm = jax.vmap(one)(jnp.asarray(thetas), jnp.asarray(sizes))
    assert theta.shape == thetas.shape and norm.shape == (300,)
    good = np.asarray(whole_norm) < 1e-11
    assert good.sum() > 100
    np.testing.assert_allclose(theta[good], np.asarray(whole)[good], atol=1e-9)
    assert np.all(norm[good] < 1e-11)
