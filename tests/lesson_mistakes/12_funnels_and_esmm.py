"""Plausible wrong answers to the exercises of lesson 12; each must be rejected by its check."""
# ruff: noqa: F821

# MISTAKE 12.product_head: the naive log(sigmoid(a) * sigmoid(b)) - log(1 - sigmoid(a) * sigmoid(b)): inf and nan at large logits
# EXERCISE 12.product_head
def product_head(a, b):
    p = sigmoid(a) * sigmoid(b)
    return np.log(p) - np.log(1 - p)


def product_head_backward(a, b, dc):
    p = sigmoid(a) * sigmoid(b)
    return dc * sigmoid(-a) / (1 - p), dc * sigmoid(-b) / (1 - p)


# MISTAKE 12.product_head: log p in log space, but log(1 - p) as log1p(-exp(log p)): -inf where p rounds to 1
# EXERCISE 12.product_head
def product_head(a, b):
    log_p = -softplus(-a) - softplus(-b)
    return log_p - np.log1p(-np.exp(log_p))


def product_head_backward(a, b, dc):
    log_p = -softplus(-a) - softplus(-b)
    log_not_p = np.log1p(-np.exp(log_p))
    return dc * np.exp(-softplus(a) - log_not_p), dc * np.exp(-softplus(b) - log_not_p)


# MISTAKE 12.product_head: dc/da = sigmoid(-a), the gradient of log p alone (the 1 / (1 - p) forgotten)
# EXERCISE 12.product_head
def product_head(a, b):
    log_p = -softplus(-a) - softplus(-b)
    log_not_p = np.logaddexp(-softplus(a), -softplus(-a) - softplus(b))
    return log_p - log_not_p


def product_head_backward(a, b, dc):
    return dc * sigmoid(-a), dc * sigmoid(-b)


# MISTAKE 12.product_head: the two gradients swapped: dc/da built from b's sigmoid and dc/db from a's
# EXERCISE 12.product_head
def product_head(a, b):
    log_p = -softplus(-a) - softplus(-b)
    log_not_p = np.logaddexp(-softplus(a), -softplus(-a) - softplus(b))
    return log_p - log_not_p


def product_head_backward(a, b, dc):
    log_not_p = np.logaddexp(-softplus(a), -softplus(-a) - softplus(b))
    return dc * np.exp(-softplus(b) - log_not_p), dc * np.exp(-softplus(a) - log_not_p)


# MISTAKE 12.esmm_ns_backward: the CTR model gets only the click loss's gradient: the product's term is lost
# EXERCISE 12.esmm_ns_backward
def esmm_ns_backward(ctr_model, cvr_model, a, b, dout):
    _, db = head_backward(a[:, 0], b[:, 0], dout[:, 1])
    ctr_model.backward(dout[:, :1])
    cvr_model.backward(db[:, None])


# MISTAKE 12.esmm_ns_backward: the CVR model gets d loss / dc itself, without dc/db
# EXERCISE 12.esmm_ns_backward
def esmm_ns_backward(ctr_model, cvr_model, a, b, dout):
    da_product, _ = head_backward(a[:, 0], b[:, 0], dout[:, 1])
    ctr_model.backward((dout[:, 0] + da_product)[:, None])
    cvr_model.backward(dout[:, 1:2])


# MISTAKE 12.esmm_ns_backward: the two models' gradients swapped
# EXERCISE 12.esmm_ns_backward
def esmm_ns_backward(ctr_model, cvr_model, a, b, dout):
    da_product, db = head_backward(a[:, 0], b[:, 0], dout[:, 1])
    ctr_model.backward(db[:, None])
    cvr_model.backward((dout[:, 0] + da_product)[:, None])


# MISTAKE 12.esmm_ns_backward: 1-D gradients (N,) handed to the models' backward, which expects (N, 1)
# EXERCISE 12.esmm_ns_backward
def esmm_ns_backward(ctr_model, cvr_model, a, b, dout):
    da_product, db = head_backward(a[:, 0], b[:, 0], dout[:, 1])
    ctr_model.backward(dout[:, 0] + da_product)
    cvr_model.backward(db)


# MISTAKE 12.watch_head: log(sigmoid(a)) formed directly: -inf where sigmoid(a) underflows (a = -800)
# EXERCISE 12.watch_head
def watch_head(scores):
    a, z = scores[:, 0], scores[:, 1]
    with np.errstate(divide="ignore"):
        return np.stack([a, np.log(sigmoid(a)) + z], axis=1)


def watch_head_backward(scores, dout):
    a = scores[:, 0]
    return np.stack([dout[:, 0] + dout[:, 1] * sigmoid(-a), dout[:, 1]], axis=1)


# MISTAKE 12.watch_head: d log sigmoid(a) / da taken as sigmoid(a) instead of sigmoid(-a)
# EXERCISE 12.watch_head
def watch_head(scores):
    a, z = scores[:, 0], scores[:, 1]
    return np.stack([a, -softplus(-a) + z], axis=1)


def watch_head_backward(scores, dout):
    a = scores[:, 0]
    return np.stack([dout[:, 0] + dout[:, 1] * sigmoid(a), dout[:, 1]], axis=1)


# MISTAKE 12.watch_head: a's gradient from log w only: the direct gradient of output 0 (a itself) is dropped
# EXERCISE 12.watch_head
def watch_head(scores):
    a, z = scores[:, 0], scores[:, 1]
    return np.stack([a, -softplus(-a) + z], axis=1)


def watch_head_backward(scores, dout):
    a = scores[:, 0]
    return np.stack([dout[:, 1] * sigmoid(-a), dout[:, 1]], axis=1)
