"""The mutation test: realistic backward-pass bugs, each injected by monkeypatching a public class or
function of the library (never by editing its source), must make the check behind
``minimoe gradcheck`` fail. A check that cannot fail is a defect; this proves these can.

``BUGS`` is also the learner's list "bugs the checker catches" in docs/checker.md (a test keeps the
two in step).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import minimoe as mm
from minimoe import moe
from minimoe.heads import FunnelHead, softplus
from minimoe.layers import Dropout, Embedding, Linear, Softmax
from minimoe.losses import MultiTaskLoss
from minimoe.moe import Gate, MixtureLayer
from minimoe.studies import gradcheck_table

CHECKER_PAGE = Path(__file__).resolve().parents[1] / "docs" / "checker.md"


def wrap(monkeypatch, cls, name, after):
    """Replace ``cls.name`` by the original followed by ``after(self, result, *args, **kwargs)``."""
    original = getattr(cls, name)

    def patched(self, *args, **kwargs):
        return after(self, original(self, *args, **kwargs), *args, **kwargs)

    monkeypatch.setattr(cls, name, patched)


def gate_gradient_scaled_at_one_ple_level(monkeypatch):
    original = MixtureLayer._gates_backward

    def scaled(self, dgates, streams_grad, input_grad):
        if len(self.stream_widths) > 1:                      # the levels above 0 read several streams
            dgates = [1.5 * dgate for dgate in dgates]
        return original(self, dgates, streams_grad, input_grad)

    monkeypatch.setattr(MixtureLayer, "_gates_backward", scaled)


def tower_bias_gradient_dropped(monkeypatch):
    original = Linear.backward

    def without_bias(self, dy, input_grad=True):
        bias_before = self.grads["b"].copy()
        result = original(self, dy, input_grad)
        if self.params["W"].shape[1] == 1:                   # a tower's output layer: one score
            self.grads["b"][...] = bias_before
        return result

    monkeypatch.setattr(Linear, "backward", without_bias)


def softmax_with_a_diagonal_jacobian(monkeypatch):
    monkeypatch.setattr(Softmax, "backward",
                        lambda self, dy, input_grad=True: self.y * (1 - self.y) * dy if input_grad else None)


def repeated_embedding_ids_do_not_accumulate(monkeypatch):
    def backward(self, dy, input_grad=True):
        self.grads["W"][self.ids] += dy                      # fancy-index +=: a repeated id counts once
        return None

    monkeypatch.setattr(Embedding, "backward", backward)


def dropout_backward_as_the_identity(monkeypatch):
    monkeypatch.setattr(Dropout, "backward", lambda self, dy, input_grad=True: dy if input_grad else None)


def balancing_gradient_scaled(monkeypatch):
    original = moe.balance_loss_backward
    monkeypatch.setattr(moe, "balance_loss_backward", lambda gates: 2.0 * original(gates))


def uncertainty_log_variance_gradient_offset(monkeypatch):
    def offset(self, result):
        self.grads["log_variance"][...] += 0.1
        return result

    wrap(monkeypatch, mm.UncertaintyWeightedLoss, "backward", offset)


def nan_mask_leaks_gradient(monkeypatch):
    original = MultiTaskLoss.mean_gradients

    def leaking(self):
        labelled, self.labelled = self.labelled, None        # forgets to zero the unlabelled rows
        try:
            return original(self)
        finally:
            self.labelled = labelled

    monkeypatch.setattr(MultiTaskLoss, "mean_gradients", leaking)


def mean_over_all_rows(monkeypatch):
    def over_every_row(self, total, scores, targets, check=True):
        sums = self.task_losses * np.maximum(self.task_counts, 1)
        self.task_counts = np.full(len(self.tasks), len(scores))   # N, not the labelled rows
        self.task_losses = sums / len(scores)
        return self.combine(self.task_losses)

    wrap(monkeypatch, MultiTaskLoss, "forward", over_every_row)


def esmm_head_loses_its_product_term(monkeypatch):
    def backward(self, dscores, input_grad=True):
        dc_db = np.exp(-softplus(self.b) - self.log_not_p)
        return np.stack([dscores[:, 0], dscores[:, 1] * dc_db], axis=1)   # a's share of c is gone

    monkeypatch.setattr(FunnelHead, "backward", backward)


def overwrite_instead_of_accumulate(monkeypatch):
    def backward(self, dy, input_grad=True):
        self.grads["W"][...] = self.x.T @ dy                 # = instead of +=
        self.grads["b"][...] += dy.sum(axis=0)
        return dy @ self.params["W"].T if input_grad else None

    monkeypatch.setattr(Linear, "backward", backward)


def gradient_skipped_on_the_training_path(monkeypatch):
    original = Gate.backward

    def skipping(self, dg, input_grad=True):
        if input_grad or self.hidden is None:
            return original(self, dg, input_grad)
        dlogits = self.softmax.backward(dg)                  # the hidden layers only when dx is asked for
        self.grads["W"][...] += self.h.T @ dlogits
        self.grads["b"][...] += dlogits.sum(axis=0)
        return None

    monkeypatch.setattr(Gate, "backward", skipping)


def regulariser_gradient_not_passed_down(monkeypatch):
    original = mm.models.MixtureModel.backbone_backward_auxiliary

    def each_level_alone(self, input_grad):
        if input_grad:
            return original(self, input_grad)
        for level in self.levels:                            # every level's own gates, nothing passed down
            level.backward_auxiliary(False)
        return None

    monkeypatch.setattr(mm.models.MixtureModel, "backbone_backward_auxiliary", each_level_alone)


def expert_input_gradient_transposed(monkeypatch):
    def wrong_input(self, result, dh, input_grad=True):
        return None if result is None or self.n_layers > 1 else result[:, ::-1]   # columns reversed

    wrap(monkeypatch, mm.Experts, "backward", wrong_input)


BUGS = [
    ("a gate gradient scaled at one PLE level", gate_gradient_scaled_at_one_ple_level),
    ("a tower's bias gradient dropped", tower_bias_gradient_dropped),
    ("softmax with a diagonal-only Jacobian, y (1 - y) dy", softmax_with_a_diagonal_jacobian),
    ("repeated embedding ids that don't accumulate (W[ids] += dy)", repeated_embedding_ids_do_not_accumulate),
    ("dropout's backward as the identity (the mask forgotten)", dropout_backward_as_the_identity),
    ("the load-balancing gradient scaled by 2", balancing_gradient_scaled),
    ("an offset of 0.1 in the uncertainty log-variance gradient", uncertainty_log_variance_gradient_offset),
    ("a NaN-label mask that leaks gradient into unlabelled rows", nan_mask_leaks_gradient),
    ("a task's mean over all N rows instead of its labelled rows", mean_over_all_rows),
    ("ESMM's head losing the product term of d logit(pCTCVR) / d a", esmm_head_loses_its_product_term),
    ("grads[...] = instead of += (overwrite instead of accumulate)", overwrite_instead_of_accumulate),
    ("a gate's hidden layers skipped when input_grad=False, the path fit takes",
     gradient_skipped_on_the_training_path),
    ("the balancing gradient not passed down to the level below when input_grad=False",
     regulariser_gradient_not_passed_down),
    ("an expert layer's input gradient with its columns in the wrong order", expert_input_gradient_transposed),
]


def test_the_table_passes_without_a_bug():
    assert gradcheck_table.first_failure() is None


@pytest.mark.parametrize("inject", [inject for _, inject in BUGS], ids=[inject.__name__ for _, inject in BUGS])
def test_every_injected_bug_fails_the_check(inject, monkeypatch):
    inject(monkeypatch)
    failure = gradcheck_table.first_failure()
    assert failure is not None, f"{inject.__name__}: the gradient check passed with the bug in"


def test_the_catalogue_covers_the_issue_list_and_the_learners_page_lists_it():
    assert len(BUGS) >= 12
    page = CHECKER_PAGE.read_text()
    listed = re.findall(r"^\d+\. (.+?) \(caught by", page, flags=re.M)
    assert listed == [description for description, _ in BUGS], "docs/checker.md and BUGS differ"
