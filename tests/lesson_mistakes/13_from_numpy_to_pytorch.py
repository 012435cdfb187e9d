"""Plausible wrong answers to the exercises of lesson 13; each must be rejected by its check."""
# ruff: noqa: F821

# MISTAKE 13.gate_forward: a ReLU on the logits too, as after every hidden layer
# EXERCISE 13.gate_forward
def gate_forward(x, hidden, W, b):
    h = x
    for W_l, b_l in hidden:
        h = torch.relu(h @ W_l + b_l)
    return torch.softmax(torch.relu(h @ W + b), dim=1)


# MISTAKE 13.gate_forward: the softmax over the rows (dim=0) instead of over the experts
# EXERCISE 13.gate_forward
def gate_forward(x, hidden, W, b):
    h = x
    for W_l, b_l in hidden:
        h = torch.relu(h @ W_l + b_l)
    return torch.softmax(h @ W + b, dim=0)


# MISTAKE 13.gate_forward: the softmax written out without subtracting the row maximum: inf / inf at a saturated gate
# EXERCISE 13.gate_forward
def gate_forward(x, hidden, W, b):
    h = x
    for W_l, b_l in hidden:
        h = torch.relu(h @ W_l + b_l)
    e = torch.exp(h @ W + b)
    return e / e.sum(dim=1, keepdim=True)


# MISTAKE 13.gate_forward: the hidden layers' outputs detached: the right weights, but no gradient reaches the hidden layers
# EXERCISE 13.gate_forward
def gate_forward(x, hidden, W, b):
    h = x
    for W_l, b_l in hidden:
        h = torch.relu(h @ W_l + b_l).detach()
    return torch.softmax(h @ W + b, dim=1)


# MISTAKE 13.funnel_head: the naive formula, the logit of the product itself: inf and nan at logits of +-50 and +-500
# EXERCISE 13.funnel_head
def funnel_head(logits):
    a, b = logits[:, 0], logits[:, 1]
    p = torch.sigmoid(a) * torch.sigmoid(b)
    return torch.stack([a, torch.log(p) - torch.log(1 - p)], dim=1)


# MISTAKE 13.funnel_head: log(1 - p) as log1p(-exp(log p)), which rounds to log(0) when p is near 1
# EXERCISE 13.funnel_head
def funnel_head(logits):
    a, b = logits[:, 0], logits[:, 1]
    log_p = torch.nn.functional.logsigmoid(a) + torch.nn.functional.logsigmoid(b)
    return torch.stack([a, log_p - torch.log1p(-torch.exp(log_p))], dim=1)


# MISTAKE 13.funnel_head: log p returned where its logit belongs
# EXERCISE 13.funnel_head
def funnel_head(logits):
    a, b = logits[:, 0], logits[:, 1]
    log_p = torch.nn.functional.logsigmoid(a) + torch.nn.functional.logsigmoid(b)
    return torch.stack([a, log_p], dim=1)


# MISTAKE 13.funnel_head: only the CTCVR logit returned, (N,) instead of the two columns (a, c)
# EXERCISE 13.funnel_head
def funnel_head(logits):
    a, b = logits[:, 0], logits[:, 1]
    log_p = torch.nn.functional.logsigmoid(a) + torch.nn.functional.logsigmoid(b)
    log_not_p = torch.logaddexp(torch.nn.functional.logsigmoid(-a),
                                torch.nn.functional.logsigmoid(a) + torch.nn.functional.logsigmoid(-b))
    return log_p - log_not_p
