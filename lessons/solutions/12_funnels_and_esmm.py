"""Answers to the exercises of lesson 12 (12_funnels_and_esmm.ipynb), one block per exercise."""
# ruff: noqa: F821  (each block replaces a notebook cell: np, softplus, sigmoid come from the notebook)

# EXERCISE 12.product_head
def product_head(a, b):
    # ESMM's product head, forward, in log space.
    # a, b: (N,) the logits of pCTR and pCVR. Returns c: (N,) the logit of p = sigmoid(a) * sigmoid(b).
    log_p = -softplus(-a) - softplus(-b)                                  # log sigmoid(a) + log sigmoid(b)
    log_not_p = np.logaddexp(-softplus(a), -softplus(-a) - softplus(b))   # log(sigmoid(-a) + sigmoid(a) sigmoid(-b))
    return log_p - log_not_p


def product_head_backward(a, b, dc):
    # Its backward pass: (dL/da, dL/db) from the upstream gradient dc = dL/dc, each (N,).
    log_not_p = np.logaddexp(-softplus(a), -softplus(-a) - softplus(b))   # log(1 - p)
    dc_da = np.exp(-softplus(a) - log_not_p)                              # sigmoid(-a) / (1 - p), in [0, 1]
    dc_db = np.exp(-softplus(b) - log_not_p)                              # sigmoid(-b) / (1 - p), in [0, 1]
    return dc * dc_da, dc * dc_db


# EXERCISE 12.esmm_ns_backward
def esmm_ns_backward(ctr_model, cvr_model, a, b, dout):
    """The backward pass of ESMM-NS: two one-task models that share nothing, under ESMM's product head.

    Right after ctr_model.forward(X) gave a (N, 1) and cvr_model.forward(X) gave b (N, 1). The head's outputs
    are (a, c), c the logit of sigmoid(a) sigmoid(b); dout: (N, 2), d loss / d (a, c). Call each model's
    backward once with the gradient of its own score, (N, 1): their backward calls add every parameter
    gradient. Returns nothing.
    """
    da_product, db = head_backward(a[:, 0], b[:, 0], dout[:, 1])     # dout_1 dc/da and dout_1 dc/db, (N,) each
    ctr_model.backward((dout[:, 0] + da_product)[:, None])           # a feeds both outputs: the click's and the product's
    cvr_model.backward(db[:, None])                                  # b feeds the product only


# EXERCISE 12.watch_head
def watch_head(scores):
    # The watch-time head, forward: (N, 2) scores (a, z) -> (N, 2) (a, log sigmoid(a) + z).
    a, z = scores[:, 0], scores[:, 1]
    return np.stack([a, -softplus(-a) + z], axis=1)                       # log sigmoid(a) = -softplus(-a)


def watch_head_backward(scores, dout):
    # Its backward pass: d log w / da = sigmoid(-a), d log w / dz = 1; a also gets dout[:, 0] directly.
    a = scores[:, 0]
    return np.stack([dout[:, 0] + dout[:, 1] * sigmoid(-a), dout[:, 1]], axis=1)
