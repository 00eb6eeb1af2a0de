"""Seeding types with the points of their neighbours (`symmetry/neighbours.py`)."""

import numpy as np

from sweep.symmetry import fixed_points, neighbours, reduced


def test_moves_keep_k_order_and_the_blocks_of_size_one():
    assert neighbours.moves((3, 7)) == [(4, 6), (2, 8)]
    assert neighbours.moves((5, 5)) == [(4, 6)]
    # (1, 9) -> (2, 8) would give the block of size one off-diagonal entries
    assert neighbours.moves((2, 8)) == [(3, 7)]
    assert neighbours.moves((1, 2, 7)) == [(1, 3, 6)]
    assert neighbours.grown((3, 7)) == [(4, 7), (3, 8)]
    assert neighbours.grown((4, 4)) == [(4, 5)]
    assert neighbours.grown((1, 5)) == [(1, 6)]


def test_a_point_of_one_type_seeds_the_next():
    # Random starts in Delta(S_2 x S_5) only, at k = 7; the flood carries its points to
    # Delta(S_3 x S_4), where each seed lands on a critical point of that type.
    k, types = 7, [(2, 5), (3, 4)]
    ends = fixed_points.newton_ends(k, [(2, 5)], starts=24)
    assert {e[0].sizes for e in ends} == {(2, 5)}
    filled = neighbours.fill(k, types, ends)
    reached = [e for e in filled if e[0].sizes == (3, 4)]
    assert reached and all(count == 0 for _, _, count in reached)
    assert filled[: len(ends)] == ends
    # every seed's end is a zero of the reduced gradient of its own type (to the 1e-9
    # rounding of `newton_ends`)
    for structure, theta, _ in reached:
        assert np.linalg.norm(reduced.gradient(structure, theta)) < 1e-7
    assert len(fixed_points.distinct(reached, k)) >= 1


def test_a_point_with_a_dead_neuron_seeds_nothing():
    # n = k + 1 with the extra neuron at zero: F has no Hessian there (ReLU), which must
    # not stop the search
    structure = fixed_points.template((1, 6), 7, extra=1)
    weights = np.vstack([np.eye(7), np.zeros((1, 7))])
    candidate = (structure, structure.theta(weights), 1)
    assert not neighbours.low_index(candidate)
