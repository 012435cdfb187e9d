import numpy as np
import pytest

import minimoe as mm
from minimoe.gradcheck import THRESHOLD_BLOCK, THRESHOLD_MODEL

from .helpers import assert_gradients

CARDINALITIES = [5, 3, 7]


def make_batch(rng, n=8, n_numeric=2):
    ids = np.stack([rng.integers(0, c, n) for c in CARDINALITIES], axis=1)
    ids[1, 0] = ids[0, 0] = ids[2, 0]                               # repeated ids in one batch
    return mm.FeatureBatch(ids, rng.standard_normal((n, n_numeric)))


def test_feature_input_shapes_and_values(rng):
    layer = mm.FeatureInput(CARDINALITIES, n_numeric=2, embedding_dims=4, seed=0)
    assert layer.embedding_dims == [4, 3, 4]                        # min(4, cardinality)
    assert layer.d_out == 4 + 3 + 4 + 2
    batch = make_batch(rng)
    x = layer.forward(batch)
    assert x.shape == (8, 13)
    np.testing.assert_array_equal(x[:, 4:7], layer.params["embeddings.1.W"][batch.categorical[:, 1]])
    np.testing.assert_array_equal(x[:, -2:], batch.numeric)


def test_feature_input_gradients_accumulate_repeated_ids(rng):
    layer = mm.FeatureInput(CARDINALITIES, n_numeric=2, seed=rng)
    batch = make_batch(rng)
    report = assert_gradients(layer, batch, threshold=THRESHOLD_BLOCK)
    assert {"embeddings.0.W", "embeddings.1.W", "embeddings.2.W"} <= set(report) and "input" not in report


def test_feature_batch_indexes_rows(rng):
    batch = make_batch(rng)
    part = batch[[3, 1]]
    assert len(batch) == 8 and len(part) == 2
    np.testing.assert_array_equal(part.categorical, batch.categorical[[3, 1]])
    np.testing.assert_array_equal(batch[2:4].numeric, batch.numeric[2:4])


@pytest.mark.parametrize("kind", ["SharedBottom", "OMoE", "MMoE"])
def test_models_with_an_input_layer_check_every_gradient(kind, rng):
    inputs = mm.FeatureInput(CARDINALITIES, n_numeric=2, embedding_dims=3, seed=rng)
    tasks = ("binary", "binary")
    if kind == "SharedBottom":
        model = mm.SharedBottom(None, bottom_units=(6,), tower_units=(5,), tasks=tasks, inputs=inputs, seed=rng)
    else:
        cls = mm.OMoE if kind == "OMoE" else mm.MMoE
        model = cls(None, n_experts=3, expert_units=(6,), tower_units=(5,), tasks=tasks, inputs=inputs, seed=rng)
    assert model.n_features == 3 + 3 + 3 + 2
    assert "inputs.embeddings.2.W" in model.params
    batch = make_batch(rng, n=16)
    assert_gradients(model, batch, threshold=THRESHOLD_MODEL)


def test_fit_predict_and_save_with_an_input_layer(rng, tmp_path):
    n = 400
    ids = np.stack([rng.integers(0, c, n) for c in CARDINALITIES], axis=1)
    numeric = rng.standard_normal((n, 2))
    # Task 0 depends on a categorical column, task 1 on a numeric one.
    Y = np.stack([ids[:, 0] >= 3, numeric[:, 1] > 0], axis=1).astype(float)
    batch = mm.FeatureBatch(ids, numeric)
    model = mm.MMoE(None, n_experts=3, expert_units=(8,), tower_units=(4,), tasks=("binary", "binary"),
                    inputs=mm.FeatureInput(CARDINALITIES, n_numeric=2, seed=0), seed=0)
    before = model.params["inputs.embeddings.0.W"].copy()
    mm.fit(model, batch[:300], Y[:300], epochs=15, batch_size=32, optimizer=mm.Adam(lr=1e-2), progress=False)
    assert not np.array_equal(before, model.params["inputs.embeddings.0.W"])     # embeddings learn
    results = mm.evaluate(model, batch[300:], Y[300:])
    assert results["task0"]["auc"] > 0.95 and results["task1"]["auc"] > 0.95, results
    assert model.gate_weights(batch[:5]).shape == (2, 5, 3)
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(mm.load(tmp_path / "m.npz").predict(batch[300:]), model.predict(batch[300:]))


IDS = np.zeros((3, 3), dtype=int)


@pytest.mark.parametrize("batch, error, match", [
    (np.zeros((3, 4)), TypeError, "X must be a FeatureBatch"),
    (mm.FeatureBatch(IDS[:, :2], np.zeros((3, 2))), ValueError, r"categorical must have shape \(N, 3\)"),
    (mm.FeatureBatch(IDS.astype(float), np.zeros((3, 2))), TypeError, "must hold integer ids"),
    (mm.FeatureBatch(IDS, np.zeros((2, 2))), ValueError, r"numeric must have shape \(3, 2\)"),
    (mm.FeatureBatch(np.array([[0, 0, 7]]), np.zeros((1, 2))), ValueError,
     r"categorical\[:, 2\] must hold ids in \[0, 7\)"),
    (mm.FeatureBatch(IDS[:1], np.array([[0.0, np.nan]])), ValueError, "numeric must be finite"),
])
def test_bad_batches_are_refused(batch, error, match):
    model = mm.SharedBottom(None, bottom_units=(4,), inputs=mm.FeatureInput(CARDINALITIES, n_numeric=2))
    with pytest.raises(error, match=match):
        model.forward(batch)


@pytest.mark.parametrize("n_columns", [3, 8])          # the per-column test and the whole-array one
@pytest.mark.parametrize("bad_id", [-1, 9])
def test_the_first_column_with_an_id_out_of_range_is_named(n_columns, bad_id):
    layer = mm.FeatureInput([9] * n_columns, n_numeric=0)
    ids = np.zeros((50, n_columns), dtype=int)
    layer.check(mm.FeatureBatch(ids, np.zeros((50, 0))))
    ids[7, 1], ids[3, n_columns - 1] = bad_id, 99                               # a later column is bad too
    with pytest.raises(ValueError, match=rf"X.categorical\[:, 1\] must hold ids in \[0, 9\), got values from "
                                         rf"{min(bad_id, 0)} to {max(bad_id, 0)}"):
        layer.check(mm.FeatureBatch(ids, np.zeros((50, 0))))


def test_numeric_values_beyond_float32_are_refused_by_a_float32_layer():
    layer = mm.FeatureInput([4], n_numeric=2, dtype=np.float32)
    batch = mm.FeatureBatch(np.zeros((2, 1), dtype=int), np.array([[0.0, 1.0], [1e39, 2.0]]))
    with pytest.raises(ValueError, match="X.numeric holds 1e\\+39, beyond the range of the layer's float32"):
        layer.check(batch)
    mm.FeatureInput([4], n_numeric=2, dtype=np.float64).check(batch)          # float64 holds it


def test_embeddings_start_small_and_the_scale_is_saved(tmp_path):
    layer = mm.FeatureInput(CARDINALITIES, n_numeric=2, seed=0)
    assert layer.config["embedding_std"] == 0.01
    tables = np.concatenate([table.ravel() for table in layer.params.values()])
    assert 0.005 < tables.std() < 0.02
    model = mm.MMoE(None, n_experts=2, expert_units=(3,), tower_units=(2,), seed=0,
                    inputs=mm.FeatureInput(CARDINALITIES, n_numeric=2, embedding_std=0.5))
    model.save(tmp_path / "m.npz")
    assert mm.load(tmp_path / "m.npz").inputs.config["embedding_std"] == 0.5


def test_bad_input_layer_arguments():
    with pytest.raises(ValueError, match="n_features must be None or the input layer's width 13"):
        mm.SharedBottom(12, inputs=mm.FeatureInput(CARDINALITIES, n_numeric=2, embedding_dims=4))
    with pytest.raises(ValueError, match="embedding_dims must give one size per categorical column"):
        mm.FeatureInput(CARDINALITIES, n_numeric=0, embedding_dims=[2, 2])
    with pytest.raises(ValueError, match="needs at least one categorical or numeric column"):
        mm.FeatureInput([], n_numeric=0)
    with pytest.raises(TypeError, match="inputs must be a FeatureInput"):
        mm.MMoE(None, inputs="embeddings")


def test_a_batch_is_checked_without_a_copy_and_cast_as_x_is_filled(rng):
    """check returns the caller's batch itself (no converted copy of a large X); forward casts the
    numeric features to the layer's dtype while writing x, so x is all float32."""
    layer = mm.FeatureInput(CARDINALITIES, n_numeric=2, seed=0, dtype=np.float32)
    batch = make_batch(rng)
    assert layer.check(batch) is batch and batch.numeric.dtype == np.float64
    x = layer.forward(batch)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x[:, -2:], batch.numeric.astype(np.float32))
    from_lists = layer.check(mm.FeatureBatch(batch.categorical.tolist(), batch.numeric.tolist()))
    np.testing.assert_array_equal(layer.forward(from_lists), x)                     # lists become arrays
    with pytest.raises(TypeError, match=r"X.numeric must hold real numbers, got dtype complex128"):
        layer.check(mm.FeatureBatch(batch.categorical, batch.numeric.astype(complex)))
