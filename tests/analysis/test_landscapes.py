"""The penalty landscapes against closed forms: the surfaces' known minima,
the bowl's minimum under L2 (c / (1 + strength)) and L1 (the soft
threshold), and torch's optimizers reaching them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.analysis.landscapes import (closed_form_bowl_minimum, global_minimum, minimum_track, objective,
                                          trajectories)
from pipeline.data.surfaces import BOWL_CENTRE, HIMMELBLAU_MINIMA, SURFACES


def test_the_surfaces_are_the_textbook_functions():
    for x, y in HIMMELBLAU_MINIMA:  # Himmelblau's four minima, all at 0
        assert SURFACES["himmelblau"].function(x, y) == pytest.approx(0, abs=1e-9)
    assert SURFACES["himmelblau"].function(0.0, 0.0) == 170.0  # 11² + 7²
    assert SURFACES["rastrigin"].function(0.0, 0.0) == 0.0
    assert SURFACES["rastrigin"].function(1.0, 0.0) == pytest.approx(1.0)  # 1 - 10 cos(2 pi) + 10
    assert SURFACES["bowl"].function(*BOWL_CENTRE) == 0.0
    # the same values on tensors, which the optimizers differentiate
    for surface in SURFACES.values():
        assert surface.function(torch.tensor(0.7), torch.tensor(-1.3)).item() == pytest.approx(
            surface.function(0.7, -1.3))


def test_without_a_penalty_the_minimum_found_is_a_known_one():
    found = global_minimum("himmelblau", "l2", 0.0)
    assert min(np.hypot(*(found - np.array(m))) for m in HIMMELBLAU_MINIMA) < 1e-5
    np.testing.assert_allclose(global_minimum("rastrigin", "l1", 0.0), [0, 0], atol=1e-6)


@pytest.mark.parametrize("kind", ["l2", "l1"])
def test_the_bowls_minimum_moves_as_the_closed_form_says(kind):
    strengths = [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0]
    track = minimum_track("bowl", kind, strengths)
    expected = np.array([closed_form_bowl_minimum(kind, s) for s in strengths])
    np.testing.assert_allclose(track, expected, atol=1e-6)
    if kind == "l2":  # every coordinate shrunk by the same factor 1 / (1 + strength)
        np.testing.assert_allclose(expected[3], np.array(BOWL_CENTRE) / 2)
    else:  # a coordinate at exactly 0 once the strength passes it: y at 1, both at 2
        assert expected[3].tolist() == [1.0, 0.0] and expected[5].tolist() == [0.0, 0.0]


def test_a_penalty_pulls_himmelblaus_minimum_towards_the_origin():
    track = minimum_track("himmelblau", "l2", [0.0, 3.0, 10.0, 30.0])
    radii = np.hypot(*track.T)
    assert (np.diff(radii) < 0).all()
    gradient = torch.tensor(track[2], requires_grad=True)
    objective("himmelblau", "l2", 10.0)(gradient[0], gradient[1]).backward()
    assert gradient.grad.abs().max() < 1e-4  # a stationary point of the penalized surface


def test_gradient_descent_and_adam_reach_the_bowls_penalized_minimum_from_every_start():
    starts = [(-2.5, 2.5), (2.5, -2.5), (0.0, 0.0)]
    for optimizer, lr in (("gd", 0.1), ("adam", 0.05)):
        paths = trajectories("bowl", [("l2", 0.0), ("l2", 1.0), ("l2", 3.0)], starts, optimizer, lr, 600)
        assert paths.shape == (3, 3, 601, 2)
        np.testing.assert_array_equal(paths[:, :, 0], np.array([starts] * 3))
        for i, strength in enumerate((0.0, 1.0, 3.0)):
            np.testing.assert_allclose(paths[i, :, -1], [closed_form_bowl_minimum("l2", strength)] * 3, atol=1e-3)
    # L1 under gradient descent: y's minimum is 0, which the subgradient oversteps every few steps, so y ends
    # oscillating about it within a step, lr * (strength + |its data gradient at 0|); x settles at 2 - 1.5
    paths = trajectories("bowl", [("l2", 1.5), ("l1", 1.5)], [(1.0, 2.0)], "gd", 0.1, 400)[1:]  # batched beside L2
    y = paths[0, 0, -50:, 1]
    assert (np.abs(y) <= 0.1 * (1.5 + 1) + 1e-9).all() and (y < 0).any() and (y > 0).any()
    assert paths[0, 0, -1, 0] == pytest.approx(0.5, abs=1e-6)
