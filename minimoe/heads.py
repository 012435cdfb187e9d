"""Heads: blocks that turn tower scores into the scores a model is trained on.

``FunnelHead`` is ESMM's (Ma et al., SIGIR 2018) for a two-step funnel, impression -> click ->
conversion. From the CTR tower's logit a and the CVR tower's logit b,

    pCTR = sigmoid(a),   pCVR = sigmoid(b),   pCTCVR = pCTR * pCVR,

and the head outputs the two logits the training labels (click, click and conversion) are scored
on: a itself, and c = logit(pCTCVR) = log p - log(1 - p). Both logs are written without ever
forming p, so that no finite a, b overflows or loses precision:

    log p     = log sigmoid(a) + log sigmoid(b) = -softplus(-a) - softplus(-b)
    log(1-p)  = log(sigmoid(-a) + sigmoid(a) sigmoid(-b))
              = logaddexp(-softplus(a), -softplus(-a) - softplus(b))

(1 - sigmoid(a) sigmoid(b) = (1 - sigmoid(a)) + sigmoid(a) (1 - sigmoid(b)): two positive terms).
Its gradient: dc/da = sigmoid(-a) / (1 - p), dc/db = sigmoid(-b) / (1 - p), each in [0, 1] and
taken as exp(log sigmoid(-a) - log(1 - p)).
"""

from __future__ import annotations

import numpy as np

from .module import Module, expect_shape


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): exact for any finite x."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def softplus_both(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(softplus(x), softplus(-x)), bit for bit as ``softplus`` gives them, with the one
    transcendental part log1p(exp(-|x|)) they share computed once."""
    shared = np.log1p(np.exp(-np.abs(x)))
    return np.maximum(x, 0) + shared, np.maximum(-x, 0) + shared


def funnel_logits(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(c, log p, log(1 - p)) for p = sigmoid(a) sigmoid(b), c = logit(p); all finite for finite a, b."""
    softplus_a, softplus_minus_a = softplus_both(a)
    softplus_b, softplus_minus_b = softplus_both(b)
    log_p = -softplus_minus_a - softplus_minus_b
    log_not_p = np.logaddexp(-softplus_a, -softplus_minus_a - softplus_b)
    return log_p - log_not_p, log_p, log_not_p


class FunnelHead(Module):
    """(N, 2) logits (a, b) of pCTR and pCVR -> (N, 2) logits (a, c) of pCTR and pCTCVR."""

    reads = ((0,), (0, 1))          # output 0 reads a; output 1, c, reads a and b

    def forward(self, logits: np.ndarray) -> np.ndarray:
        a, b = logits[:, 0], logits[:, 1]
        c, _, self.log_not_p = funnel_logits(a, b)
        self.a, self.b = a, b
        return np.stack([a, c], axis=1)                                           # (N, 2)

    def backward(self, dscores: np.ndarray, input_grad: bool = True) -> np.ndarray | None:  # (N, 2)
        expect_shape(self, "dscores", dscores, (len(self.a), 2))
        dc_da = np.exp(-softplus(self.a) - self.log_not_p)                        # sigmoid(-a) / (1 - p)
        dc_db = np.exp(-softplus(self.b) - self.log_not_p)                        # sigmoid(-b) / (1 - p)
        return np.stack([dscores[:, 0] + dscores[:, 1] * dc_da, dscores[:, 1] * dc_db], axis=1)
