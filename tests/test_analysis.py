"""Expert utilization: usage, entropy, polarization, CKA, expert matching and stability."""

import numpy as np
import pytest

import minimoe as mm
from minimoe import analysis


def _trained(seed, X, Y, **kwargs):
    model = mm.MMoE(X.shape[1], 8, (16,), (8,), seed=seed, **kwargs)
    mm.fit(model, X, Y, epochs=15, batch_size=128, optimizer=mm.Adam(lr=1e-2), seed=seed, progress=False)
    return model


@pytest.fixture(scope="module")
def synthetic():
    X, Y = mm.data.make_synthetic(6000, 20, correlation=0.5, seed=0)
    return mm.data.train_test_split(X, Y, 1000, seed=0)


def test_usage_and_entropy_shapes_and_ranges(rng):
    model = mm.OMoE(5, 4, (6,), (3,), tasks=("binary", "regression", "regression"))
    X = rng.standard_normal((50, 5))
    usage = analysis.expert_usage(model, X)
    assert usage.shape == (3, 4)
    np.testing.assert_allclose(usage.sum(axis=1), 1.0)
    np.testing.assert_allclose(usage[0], usage[1])                     # OMoE: one gate for all tasks
    entropy = analysis.gate_entropy(model, X)
    assert entropy.shape == (3,) and ((entropy > 0) & (entropy <= 1)).all()


def test_normalized_entropy_extremes():
    assert analysis.normalized_entropy(np.array([0.25] * 4)) == pytest.approx(1.0)
    assert analysis.normalized_entropy(np.array([0.0, 1.0, 0.0])) == pytest.approx(0.0)
    assert analysis.normalized_entropy(np.array([1.0])) == 0.0


def test_polarization_flags_unused_and_dominant_experts():
    usage = np.array([[0.25, 0.25, 0.25, 0.25],
                      [0.97, 0.01, 0.01, 0.01]])
    result = analysis.polarization(usage)
    np.testing.assert_array_equal(result.n_unused, [0, 3])             # below 1 / (10 E) = 0.025
    np.testing.assert_allclose(result.busiest_share, [0.25, 0.97])
    assert result.score[0] == pytest.approx(0.0, abs=1e-12) and result.score[1] > 0.8
    with pytest.raises(ValueError, match="sum to 1"):
        analysis.polarization(np.array([[0.5, 0.2]]))
    with pytest.raises(ValueError, match="unused_below"):
        analysis.polarization(usage, unused_below=1.5)


def test_cka_is_blind_to_unit_order_and_scale(rng):
    A = rng.standard_normal((200, 3, 5))
    rotation, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    B = 3.0 * (A[:, [2, 0, 1], :] @ rotation)                          # experts permuted, units rotated
    cka = analysis.linear_cka(A, B)
    np.testing.assert_allclose(cka[[0, 1, 2], [1, 2, 0]], 1.0, atol=1e-12)
    off_diagonal = cka[~np.isin(np.arange(9).reshape(3, 3), [1, 5, 6])]
    assert off_diagonal.max() < 0.2                                    # unrelated random outputs
    dead = np.zeros((200, 1, 5))
    assert analysis.linear_cka(A, dead).max() == 0.0


def test_a_model_matches_a_permuted_copy_of_itself(rng):
    model = mm.MMoE(6, 5, (7,), (3,), seed=0)
    permuted = mm.MMoE(6, 5, (7,), (3,), seed=0)
    order = np.array([3, 0, 4, 1, 2])                                  # permuted expert j = model's order[j]
    for name in ("W0", "b0"):
        permuted.params[f"levels.0.experts.shared.{name}"][...] = model.params[f"levels.0.experts.shared.{name}"][order]
    for k in range(2):
        gate = f"levels.0.gates.task{k}"
        permuted.params[f"{gate}.W"][...] = model.params[f"{gate}.W"][:, order]
        permuted.params[f"{gate}.b"][...] = model.params[f"{gate}.b"][order]
    X = rng.standard_normal((300, 6))
    np.testing.assert_allclose(permuted.forward(X), model.forward(X), atol=1e-12)   # the same function
    inverse = np.argsort(order)                                        # model's expert i is permuted's inverse[i]
    for by in analysis.MATCH_BY:
        np.testing.assert_array_equal(analysis.match_experts(model, permuted, X, by=by), inverse)
    report = analysis.expert_stability([model, permuted], X)
    assert report.usage_agreement[0] == pytest.approx(1.0)
    assert report.assignment_agreement[0] == 1.0 and report.top_expert_agreement[0] == 1.0
    assert report.matched_similarity[0] == pytest.approx(1.0)
    assert report.chance_usage_agreement < 1.0
    assert report.usage_excess == pytest.approx(1.0) and report.assignment_excess == pytest.approx(1.0)


def test_stability_across_seeds_is_above_chance(synthetic):
    X_train, X_test, Y_train, Y_test = synthetic
    models = [_trained(seed, X_train, Y_train) for seed in range(3)]
    report = analysis.expert_stability(models, X_test)
    assert report.matches.shape == (3, 8) and report.usage.shape == (3, 2, 8)
    for match in report.matches:
        assert sorted(match.tolist()) == list(range(8))
    # Retrained experts reappear (matched CKA 0.72 measured, against ~0.3-0.5 for unmatched pairs).
    assert report.matched_similarity.mean() > 0.5
    assert report.assignment_agreement.mean() > report.chance_assignment_agreement
    assert 0 < report.assignment_excess < 1
    assert "assignment agreement" in report.summary()


def test_the_load_balancing_loss_reduces_polarization(synthetic):
    """Seeded runs: without balancing the usage polarization score is 0.04-0.06 (busiest expert
    0.25-0.28 of the weight); with balance_weight=0.1 it is below 0.002 (busiest 0.13)."""
    X_train, X_test, Y_train, Y_test = synthetic
    scores = {}
    for weight in (0.0, 0.1):
        model = _trained(0, X_train, Y_train, balance_weight=weight)
        scores[weight] = analysis.polarization(analysis.expert_usage(model, X_test)).score.mean()
    assert scores[0.1] < 0.25 * scores[0.0], scores


def test_analysis_rejects_models_without_gates(rng):
    with pytest.raises(TypeError, match="must be a mixture model"):
        analysis.expert_usage(mm.SharedBottom(4, (5,), (3,)), rng.standard_normal((3, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        analysis.expert_stability([mm.MMoE(4, 3, (5,), (3,))], rng.standard_normal((3, 4)))
    with pytest.raises(ValueError, match="same experts"):
        analysis.match_experts(mm.MMoE(4, 3, (5,), (3,)), mm.MMoE(4, 2, (5,), (3,)), rng.standard_normal((3, 4)))
    with pytest.raises(ValueError, match="by must be"):
        analysis.match_experts(mm.MMoE(4, 3, (5,), (3,)), mm.MMoE(4, 3, (5,), (3,)), rng.standard_normal((3, 4)),
                               by="names")
