"""Training and evaluation: ``fit``, ``evaluate`` and the per-epoch ``History``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .checks import check_positive_int, make_rng
from .losses import MultiTaskLoss
from .optim import Adam
from .progress import ProgressBar


class NonFiniteLossError(FloatingPointError):
    """Training met a non-finite loss or gradient; the parameters are those before that step."""


@dataclass
class History:
    """Per-epoch losses. ``train_loss[e, k]`` is task k's mean loss over epoch e's minibatches
    (unweighted), ``train_total[e]`` the weighted total; ``validation_*`` likewise on the validation
    set after epoch e (empty without validation data); ``monitored[e]`` the validation loss that
    ``monitor`` names, and ``best_epoch`` the epoch where it was lowest (with early stopping, the
    epoch whose parameters were kept)."""

    task_names: tuple
    monitor: str = "total"            # what early stopping and best_epoch watch: "total" or a task's name
    train_loss: list = field(default_factory=list)
    train_total: list = field(default_factory=list)
    validation_loss: list = field(default_factory=list)
    validation_total: list = field(default_factory=list)
    epoch_seconds: list = field(default_factory=list)
    train_auxiliary: list = field(default_factory=list)   # mean auxiliary (load-balancing) loss; 0 without
    monitored: list = field(default_factory=list)          # the monitored validation loss after each epoch
    best_epoch: int | None = None     # with validation data: the epoch of the lowest monitored loss
    initial_epoch: int = 0            # epochs are numbered initial_epoch + 1, initial_epoch + 2, ...

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {name: np.array(getattr(self, name)) for name in
                ("train_loss", "train_total", "validation_loss", "validation_total", "epoch_seconds",
                 "train_auxiliary", "monitored")}

    def __repr__(self) -> str:
        columns = [f"train:{name}" for name in self.task_names]
        if self.validation_loss:
            columns += [f"val:{name}" for name in self.task_names]
        rows = ["epoch " + " ".join(f"{c:>14}" for c in columns)]
        for epoch, train in enumerate(self.train_loss):
            values = list(train) + (list(self.validation_loss[epoch]) if self.validation_loss else [])
            number = self.initial_epoch + epoch + 1
            rows.append(f"{number:5d} " + " ".join(f"{v:14.4f}" for v in values)
                        + ("  <- best" if number == self.best_epoch else ""))
        if self.best_epoch is not None:
            rows.append(f"best epoch {self.best_epoch} by the validation loss of {self.monitor!r}")
        return "\n".join(rows)


def fit(model, X, Y, epochs: int = 10, batch_size: int = 128, optimizer=None, loss=None,
        validation=None, seed=0, progress: bool = True, shuffle: bool = True,
        early_stopping: int | None = None, allow_missing: bool = True, monitor: str = "total",
        initial_epoch: int = 0) -> History:
    """Train ``model`` on (X, Y) with minibatches; returns the per-epoch ``History``.

    X: (N, D), Y: (N, T) (0/1 labels for binary tasks; NaN marks a missing label, unless
    ``allow_missing=False``). ``optimizer`` defaults to Adam(lr=1e-3), ``loss`` to the unweighted
    ``MultiTaskLoss`` of the model's tasks, ``validation`` is an optional (X_val, Y_val).

    Batches are shuffled by ``seed``, an int or a ``numpy.random.Generator``: the same seed gives the
    same run, bit for bit. An int starts a new generator at every call, so ``fit(..., epochs=1,
    seed=0)`` called in a loop would repeat ONE shuffle every epoch; to go on epoch by epoch, say
    which epoch it is (``initial_epoch``, below) or pass one Generator (``rng =
    np.random.default_rng(0)``, then ``seed=rng`` in every call), which carries on its stream; and
    pass the same optimizer, which carries on its moments. A non-finite loss or gradient
    stops training with ``NonFiniteLossError`` naming the epoch and step; the parameters are left as
    they were before that step.

    Each step, in training mode: ``forward``, the loss and the model's ``auxiliary_loss()`` (the
    load-balancing loss of ``balance_weight``; its per-epoch mean is ``history.train_auxiliary``),
    ``loss.backward_model(model)``, ``model.backward_auxiliary()``, one optimizer step over the
    model's parameters and the loss's own (the log-variances of ``UncertaintyWeightedLoss``).
    Validation runs in evaluation mode; the model is left in the mode it had.

    ``early_stopping=k`` (needs ``validation``) stops after k epochs without a lower monitored
    validation loss and puts back the parameters of the best epoch (``history.best_epoch``), the
    loss's included. ``monitor`` names that loss: ``"total"`` (the weighted total, the default) or a
    task's name, whose unweighted validation loss is then watched alone (``monitor="ctcvr"`` for
    ESMM, whose CVR tower learns only through that task).

    ``initial_epoch=e`` continues a run: epochs are numbered from e + 1, and with an int seed the
    shuffles are those epochs e + 1, ... of ``fit(..., epochs=e + epochs, seed=seed)`` would use.
    Called in a loop with the same int seed, ``fit(..., epochs=1, initial_epoch=e)`` then shuffles
    differently every epoch, as one long call does (pass the same optimizer too).
    """
    epochs, batch_size = check_positive_int("epochs", epochs), check_positive_int("batch_size", batch_size)
    X = model.check_inputs(X)
    Y = model.check_targets("Y", Y, len(X), allow_missing)
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError("validation must be a pair (X_val, Y_val)")
        X_val = model.check_inputs(validation[0])
        Y_val = model.check_targets("validation Y", validation[1], len(X_val), allow_missing)
        validation = (X_val, Y_val)
    if early_stopping is not None:
        early_stopping = check_positive_int("early_stopping", early_stopping)
        if validation is None:
            raise ValueError("early_stopping needs validation data: pass validation=(X_val, Y_val)")
    if monitor != "total" and monitor not in model.task_names:
        raise ValueError(f"monitor must be 'total' or one of the tasks {list(model.task_names)}, got {monitor!r}")
    if monitor != "total" and validation is None:
        raise ValueError(f"monitor={monitor!r} watches a validation loss: pass validation=(X_val, Y_val)")
    if isinstance(initial_epoch, (bool, np.bool_)) or not isinstance(initial_epoch, (int, np.integer)) \
            or initial_epoch < 0:
        raise ValueError(f"initial_epoch must be an int >= 0, got {initial_epoch!r}")
    optimizer = optimizer if optimizer is not None else Adam(lr=1e-3)
    loss = loss if loss is not None else MultiTaskLoss(model.tasks)
    loss.check_matches(model)
    rng = make_rng(seed)
    if not isinstance(seed, np.random.Generator) and shuffle:
        for _ in range(initial_epoch):                # an int seed: the shuffles of the epochs before
            rng.permutation(len(X))
    steps_per_epoch = -(-len(X) // batch_size)
    history = History(task_names=model.task_names, monitor=monitor, initial_epoch=int(initial_epoch))
    bar = ProgressBar(epochs * steps_per_epoch, f"{type(model).__name__}", enabled=progress)
    try:
        with np.errstate(over="ignore", invalid="ignore"), model.mode(training=True):  # divergence: caught by name
            _train_epochs(model, X, Y, epochs, batch_size, optimizer, loss, rng, shuffle, bar, history,
                          validation, early_stopping)
    finally:
        bar.close()
    return history


def trained_arrays(model, loss) -> tuple[dict, dict]:
    """(params, grads): what the optimizer steps, the model's parameters and the loss's own (the
    log-variances of ``UncertaintyWeightedLoss``), under ``model.<name>`` and ``loss.<name>``."""
    params, grads = {}, {}
    for owner, module in (("model", model), ("loss", loss)):
        owner_grads = module.grads
        for name, param in module.params.items():
            params[f"{owner}.{name}"], grads[f"{owner}.{name}"] = param, owner_grads[name]
    return params, grads


def step_gradients(model, loss, X, Y, grads=None) -> tuple[float, float]:
    """One training step's gradients, exactly as ``fit`` computes them (the gradient checks run this
    very function): forward in the model's current mode, the loss and the auxiliary loss, zeroed
    gradients, ``loss.backward_model(model)`` (which skips d loss / d X) and
    ``model.backward_auxiliary(input_grad=False)``. X, Y must be checked already. ``grads``: the
    gradient arrays of the model and the loss, when the caller holds them (``fit`` does, and
    zeroes them without walking the trees every step). Returns (total objective, auxiliary loss)."""
    scores = model.forward(X, check=False)                                  # (B, T)
    auxiliary = model.auxiliary_loss()
    total = loss.forward(scores, Y, check=False) + auxiliary
    if grads is None:
        model.zero_grad()
        loss.zero_grad()
    else:
        for grad in grads:
            grad.fill(0.0)
    loss.backward_model(model)
    model.backward_auxiliary(input_grad=False)
    return total, auxiliary


def _train_epochs(model, X, Y, epochs, batch_size, optimizer, loss, rng, shuffle, bar, history,
                  validation, early_stopping) -> None:
    params, grads = trained_arrays(model, loss)
    grad_arrays = list(grads.values())
    n_rows = len(X)
    labelled_rows = (~np.isnan(Y)).sum(axis=0)                              # (T,) per task
    steps_per_epoch = -(-n_rows // batch_size)
    best = None
    watched = None if history.monitor == "total" else model.task_names.index(history.monitor)
    for epoch in range(history.initial_epoch + 1, history.initial_epoch + epochs + 1):
        started = time.perf_counter()
        order = rng.permutation(n_rows) if shuffle else np.arange(n_rows)
        loss_sums, auxiliary_sum = np.zeros(model.n_tasks), 0.0
        for step in range(1, steps_per_epoch + 1):
            rows = order[(step - 1) * batch_size: step * batch_size]
            total, auxiliary = step_gradients(model, loss, X[rows], Y[rows], grad_arrays)
            if not np.isfinite(total):
                raise NonFiniteLossError(f"loss became {total} at epoch {epoch}, step {step}; "
                                         "parameters are those before this step (try a lower lr)")
            # One sum per array: any inf or NaN makes the total non-finite (so does a sum past 1e308).
            if not np.isfinite(sum(float(grad.sum()) for grad in grads.values())):
                raise NonFiniteLossError(f"a gradient became non-finite at epoch {epoch}, step {step}; "
                                         "parameters are those before this step (try a lower lr)")
            optimizer.step(params, grads)
            loss_sums += loss.task_losses * loss.task_counts
            auxiliary_sum += auxiliary * rows.size
            bar.update(1, epoch=epoch, loss=total)
        history.train_loss.append(loss_sums / np.maximum(labelled_rows, 1))
        history.train_total.append(loss.combine(history.train_loss[-1]))
        history.train_auxiliary.append(auxiliary_sum / n_rows)
        if validation is not None:
            X_val, Y_val = validation
            val_total = loss.forward(model.predict_scores(X_val), Y_val, check=False)
            history.validation_loss.append(loss.task_losses.copy())
            history.validation_total.append(val_total)
            history.monitored.append(val_total if watched is None else float(loss.task_losses[watched]))
        history.epoch_seconds.append(time.perf_counter() - started)
        bar.end_epoch(epoch=epoch, loss=history.train_total[-1],
                      **({"val_loss": history.validation_total[-1]} if validation is not None else {}))
        if validation is not None and (history.best_epoch is None or
                                       history.monitored[-1] < history.monitored[history.best_epoch
                                                                                  - history.initial_epoch - 1]):
            history.best_epoch = epoch
            if early_stopping is not None:
                best = ({name: param.copy() for name, param in params.items()}, loss.state())
        elif early_stopping is not None and epoch - history.best_epoch >= early_stopping:
            break
    if best is not None:
        for name, param in params.items():
            param[...] = best[0][name]                        # the best epoch's parameters, in place
        loss.restore(best[1])


def evaluate(model, X, Y, allow_missing: bool = True) -> dict[str, dict[str, float]]:
    """Per task, its metrics on the rows where it is labelled (``Task.metrics``: ``auc`` and
    ``log_loss`` for a binary task, ``mse`` for a regression task) and ``n``, the number of those
    rows. NaN labels are missing (an error with ``allow_missing=False``)."""
    scores = model.predict_scores(X)
    Y = model.check_targets("Y", Y, scores.shape[0], allow_missing)
    results = {}
    for k, task in enumerate(model.tasks):
        labelled = ~np.isnan(Y[:, k])
        results[task.name] = dict(task.metrics(Y[labelled, k], scores[labelled, k].astype(np.float64)),
                                  n=int(labelled.sum()))
    return results
