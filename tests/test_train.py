import numpy as np
import pytest

import minimoe as mm
from minimoe.train import NonFiniteLossError


@pytest.fixture(scope="module")
def synthetic():
    X, Y = mm.data.make_synthetic(n_samples=6000, n_features=20, correlation=0.5, seed=3)
    return mm.data.train_test_split(X, Y, test_size=0.25, seed=0)


def least_squares_mse(X_train, Y_train, X_test, Y_test):
    design = np.c_[X_train, np.ones(len(X_train))]
    coef, *_ = np.linalg.lstsq(design, Y_train, rcond=None)
    return ((np.c_[X_test, np.ones(len(X_test))] @ coef - Y_test) ** 2).mean(axis=0)


def test_mmoe_beats_linear_least_squares(synthetic):
    X_train, X_test, Y_train, Y_test = synthetic
    linear = least_squares_mse(X_train, Y_train, X_test, Y_test)
    model = mm.MMoE(20, n_experts=8, expert_units=(16,), tower_units=(8,), seed=0)
    mm.fit(model, X_train, Y_train, epochs=30, batch_size=64, optimizer=mm.Adam(lr=3e-3), seed=0,
           progress=False)
    results = mm.evaluate(model, X_test, Y_test)
    mmoe = np.array([results["task0"]["mse"], results["task1"]["mse"]])
    # Measured: linear least squares 0.119 / 0.120; MMoE 0.016 / 0.016 with seed 0, and 0.12 to 0.13
    # of the linear error with seeds 1, 2, 3. Asserted with margin: at most 0.3 of it on each task.
    assert (mmoe < 0.3 * linear).all(), (mmoe, linear)


def test_fit_is_deterministic(synthetic):
    X_train, _, Y_train, _ = synthetic
    runs = []
    for _ in range(2):
        model = mm.MMoE(20, n_experts=3, expert_units=(4,), tower_units=(2,), seed=5)
        history = mm.fit(model, X_train[:500], Y_train[:500], epochs=2, batch_size=50, seed=9, progress=False)
        runs.append((model.params, history.train_total))
    for name in runs[0][0]:
        np.testing.assert_array_equal(runs[0][0][name], runs[1][0][name])
    assert runs[0][1] == runs[1][1]


def test_history_has_one_entry_per_epoch_and_task(synthetic):
    X_train, X_test, Y_train, Y_test = synthetic
    model = mm.SharedBottom(20, bottom_units=(8,), tower_units=(4,))
    history = mm.fit(model, X_train[:400], Y_train[:400], epochs=3, batch_size=100,
                     validation=(X_test[:100], Y_test[:100]), progress=False)
    arrays = history.as_arrays()
    assert arrays["train_loss"].shape == (3, 2) and arrays["validation_loss"].shape == (3, 2)
    assert arrays["train_total"].shape == (3,)
    np.testing.assert_allclose(arrays["validation_total"], arrays["validation_loss"].sum(axis=1))
    assert "val:task1" in repr(history)


def test_fit_trains_binary_tasks():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 6))
    Y = np.stack([(X[:, 0] + X[:, 1] > 0), (X[:, 2] - X[:, 3] > 0)], axis=1).astype(float)
    model = mm.MMoE(6, n_experts=4, expert_units=(8,), tower_units=(4,), tasks=("binary", "binary"))
    mm.fit(model, X[:1500], Y[:1500], epochs=10, batch_size=64, optimizer=mm.Adam(lr=1e-2), progress=False)
    results = mm.evaluate(model, X[1500:], Y[1500:])
    assert results["task0"]["auc"] > 0.97 and results["task1"]["auc"] > 0.97, results
    assert results["task0"]["log_loss"] < 0.3


def test_sgd_also_trains(synthetic):
    X_train, _, Y_train, _ = synthetic
    model = mm.OMoE(20, n_experts=4, expert_units=(8,), tower_units=(4,))
    history = mm.fit(model, X_train, Y_train, epochs=5, batch_size=64, optimizer=mm.SGD(lr=0.01, momentum=0.9),
                     progress=False)
    assert history.train_total[-1] < 0.7 * history.train_total[0]


def test_divergence_stops_with_the_last_finite_parameters(synthetic):
    X_train, _, Y_train, _ = synthetic
    model = mm.SharedBottom(20, bottom_units=(8,), tower_units=(4,))
    # Step 1's gradients are finite, so its update (huge, but finite) is applied; step 2 then
    # meets a non-finite loss, stops, and leaves step 1's parameters in place.
    with pytest.raises(NonFiniteLossError, match=r"loss became (nan|inf) at epoch 1, step 2"):
        mm.fit(model, X_train, Y_train, optimizer=mm.SGD(lr=1e300), progress=False)
    assert all(np.isfinite(value).all() for value in model.params.values())


def test_non_finite_loss_leaves_parameters_untouched():
    X = np.ones((4, 2))
    Y = np.full((4, 2), 1e200)                                    # squared error overflows to inf
    model = mm.SharedBottom(2, bottom_units=(3,), tower_units=(2,))
    before = {name: value.copy() for name, value in model.params.items()}
    with pytest.raises(NonFiniteLossError, match="loss became inf at epoch 1, step 1"):
        mm.fit(model, X, Y, batch_size=2, progress=False)
    for name, value in model.params.items():
        np.testing.assert_array_equal(value, before[name])


@pytest.mark.parametrize("call, error, match", [
    (lambda m, X, Y: mm.fit(m, X, Y[:-1]), ValueError, "Y must have 10 rows to match the inputs, got 9"),
    (lambda m, X, Y: mm.fit(m, X[:, :2], Y), ValueError, "X must have 3 features, got 2"),
    (lambda m, X, Y: mm.fit(m, X, Y, epochs=0), ValueError, "epochs must be >= 1"),
    (lambda m, X, Y: mm.fit(m, X, Y, batch_size=1.5), TypeError, "batch_size must be a positive int"),
    (lambda m, X, Y: mm.fit(m, X, Y, validation=X), TypeError, "validation must be a pair"),
    (lambda m, X, Y: mm.fit(m, X, np.where(Y > 0, 2.0, 0.0)), ValueError, "binary task, labels must be 0 or 1"),
    (lambda m, X, Y: mm.fit(m, X, Y, loss=mm.MultiTaskLoss(("regression", "regression"))), ValueError,
     "loss has tasks"),
    (lambda m, X, Y: mm.evaluate(m, X, Y[:, :1]), ValueError, "Y must have 2 columns"),
])
def test_fit_and_evaluate_reject_bad_input(call, error, match):
    model = mm.MMoE(3, n_experts=2, expert_units=(2,), tower_units=(2,), tasks=("binary", "regression"))
    X = np.random.default_rng(0).standard_normal((10, 3))
    Y = np.c_[np.arange(10) % 2, np.arange(10.0)]
    with pytest.raises(error, match=match):
        call(model, X, Y)


def test_fit_does_not_modify_caller_arrays(synthetic):
    X_train, _, Y_train, _ = synthetic
    X, Y = X_train[:200].copy(), Y_train[:200].copy()
    model = mm.MMoE(20, n_experts=2, expert_units=(3,), tower_units=(2,))
    mm.fit(model, X, Y, epochs=1, batch_size=32, progress=False)
    np.testing.assert_array_equal(X, X_train[:200])
    np.testing.assert_array_equal(Y, Y_train[:200])


def test_progress_bar_writes_when_enabled(synthetic, capsys):
    X_train, _, Y_train, _ = synthetic
    model = mm.SharedBottom(20, bottom_units=(4,), tower_units=(2,))
    mm.fit(model, X_train[:100], Y_train[:100], epochs=2, batch_size=50, progress=True)
    err = capsys.readouterr().err
    assert "SharedBottom [" in err and "4/4" in err and err.endswith("\n")
    mm.fit(model, X_train[:100], Y_train[:100], epochs=1, batch_size=50, progress=False)
    assert capsys.readouterr().err == ""


def test_early_stopping_keeps_the_best_epoch(synthetic):
    X_train, X_test, Y_train, Y_test = synthetic
    X_small, Y_small = X_train[:300], Y_train[:300]                 # few rows: it will overfit
    model = mm.MMoE(20, n_experts=4, expert_units=(32,), tower_units=(8,), seed=0)
    history = mm.fit(model, X_small, Y_small, epochs=200, batch_size=32, optimizer=mm.Adam(lr=1e-2),
                     validation=(X_test, Y_test), early_stopping=3, progress=False)
    epochs_run = len(history.validation_total)
    best = history.best_epoch
    assert epochs_run < 200 and epochs_run == best + 3               # stopped 3 epochs after the best
    assert history.validation_total[best - 1] == min(history.validation_total)
    # The kept parameters are the best epoch's: their validation loss is that epoch's.
    loss = mm.MultiTaskLoss(model.tasks)
    assert loss.forward(model.predict_scores(X_test), Y_test) == pytest.approx(history.validation_total[best - 1])


def test_early_stopping_needs_validation(synthetic):
    X_train, _, Y_train, _ = synthetic
    model = mm.SharedBottom(20, bottom_units=(4,))
    with pytest.raises(ValueError, match="early_stopping needs validation data"):
        mm.fit(model, X_train, Y_train, early_stopping=2, progress=False)


def test_boolean_labels_are_read_as_0_and_1_for_binary_tasks(rng):
    X = rng.standard_normal((60, 4))
    labels = rng.random((60, 2)) < 0.4                                      # (N, T) bool
    runs = []
    for Y in (labels, labels.astype(float)):
        model = mm.MMoE(4, 2, (3,), (2,), tasks=("binary", "binary"), seed=0)
        mm.fit(model, X, Y, epochs=2, batch_size=16, progress=False)
        runs.append(model.predict(X))
    np.testing.assert_array_equal(runs[0], runs[1])
    regression = mm.MMoE(4, 2, (3,), (2,), tasks=("binary", "regression"), seed=0)
    with pytest.raises(TypeError, match=r"Y holds booleans.*\['task1'\] are not binary"):
        mm.fit(regression, X, labels, epochs=1, progress=False)


def test_early_stopping_can_watch_one_task(rng):
    """monitor="ctcvr" stops ESMM on the task its CVR tower learns from; History says what it
    watched, its values, and the best epoch."""
    X, Y = mm.data.make_funnel(3000, cardinalities=(20, 5), n_dense=2, seed=0)
    labels = mm.data.esmm_labels(Y)
    train, val = slice(0, 2400), slice(2400, None)
    histories = {}
    for monitor in ("total", "ctcvr"):
        model = mm.ESMM(None, inputs=mm.FeatureInput([20, 5], n_numeric=2, seed=0), tower_units=(8,), seed=0)
        histories[monitor] = mm.fit(model, X[train], labels[train], epochs=6, batch_size=64, progress=False,
                                    optimizer=mm.Adam(lr=3e-2), validation=(X[val], labels[val]),
                                    early_stopping=2, monitor=monitor)
    total, ctcvr = histories["total"], histories["ctcvr"]
    assert total.monitor == "total" and total.monitored == total.validation_total
    assert ctcvr.monitor == "ctcvr" and ctcvr.monitored == [losses[1] for losses in ctcvr.validation_loss]
    assert ctcvr.monitored[ctcvr.best_epoch - 1] == min(ctcvr.monitored)
    assert "best epoch" in repr(ctcvr)
    with pytest.raises(ValueError, match=r"monitor must be 'total' or one of the tasks \['ctr', 'ctcvr'\]"):
        mm.fit(model, X[train], labels[train], monitor="cvr", validation=(X[val], labels[val]), progress=False)
    with pytest.raises(ValueError, match="monitor='ctcvr' watches a validation loss"):
        mm.fit(model, X[train], labels[train], monitor="ctcvr", progress=False)


def test_training_epoch_by_epoch_continues_the_shuffles(rng):
    """fit(epochs=1, initial_epoch=e) in a loop, with one optimizer and an int seed, is the same run as
    one fit(epochs=3); without initial_epoch the loop would repeat one shuffle."""
    X, Y = rng.standard_normal((200, 4)), rng.standard_normal((200, 2))
    whole = mm.MMoE(4, 2, (3,), (2,), seed=0)
    mm.fit(whole, X, Y, epochs=3, batch_size=32, seed=5, progress=False)
    looped, repeated = mm.MMoE(4, 2, (3,), (2,), seed=0), mm.MMoE(4, 2, (3,), (2,), seed=0)
    optimizer, optimizer_repeated = mm.Adam(), mm.Adam()
    for epoch in range(3):
        history = mm.fit(looped, X, Y, epochs=1, batch_size=32, seed=5, optimizer=optimizer, initial_epoch=epoch,
                         progress=False)
        mm.fit(repeated, X, Y, epochs=1, batch_size=32, seed=5, optimizer=optimizer_repeated, progress=False)
    assert history.initial_epoch == 2 and repr(history).splitlines()[1].startswith("    3")
    for name, param in whole.params.items():
        np.testing.assert_array_equal(param, looped.params[name])
    assert any(not np.array_equal(param, repeated.params[name]) for name, param in whole.params.items())
    generator_run = mm.MMoE(4, 2, (3,), (2,), seed=0)
    stream, optimizer_g = np.random.default_rng(5), mm.Adam()
    for _ in range(3):                                    # or one Generator, carried across the calls
        mm.fit(generator_run, X, Y, epochs=1, batch_size=32, seed=stream, optimizer=optimizer_g, progress=False)
    for name, param in whole.params.items():
        np.testing.assert_array_equal(param, generator_run.params[name])
    with pytest.raises(ValueError, match="initial_epoch must be an int >= 0"):
        mm.fit(whole, X, Y, initial_epoch=-1, progress=False)
