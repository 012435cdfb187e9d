"""Answers to the exercises of lesson 13 (13_from_numpy_to_pytorch.ipynb), one block per exercise."""
# ruff: noqa: F821  (each block replaces a notebook cell: torch and the lesson's own names come from the notebook)

# EXERCISE 13.gate_forward
def gate_forward(x, hidden, W, b):
    """A gate's forward pass in PyTorch: softmax(h(x) @ W + b) over the experts.

    x:      (N, D) tensor, the rows the gate reads
    hidden: a list of (W_l, b_l) tensor pairs, the gate's hidden layers, applied in order as
            h = relu(h @ W_l + b_l) starting from h = x (an empty list: the paper's linear gate, h = x)
    W:      (D_h, E) tensor, b: (E,) tensor, the output layer
    returns (N, E): every row a softmax over the E experts (rows sum to 1)
    Use torch operations only, so that autograd can differentiate it.
    """
    h = x
    for W_l, b_l in hidden:                              # ReLU after every hidden layer
        h = torch.relu(h @ W_l + b_l)                    # (N, D_l)
    logits = h @ W + b                                   # (N, E), no ReLU on the logits
    return torch.softmax(logits, dim=1)                  # over the experts; subtracts the row maximum inside


# EXERCISE 13.funnel_head
def funnel_head(logits):
    """ESMM's funnel head in PyTorch (lesson 12 wrote it in NumPy).

    logits: (N, 2) tensor, columns a (the CTR logit) and b (the CVR logit)
    returns (N, 2): columns a and c = logit(sigmoid(a) * sigmoid(b)), finite for all finite a, b.
    Build log p and log(1 - p) in log space, never p itself:
        log p     = -softplus(-a) - softplus(-b)
        log(1-p)  = logaddexp(-softplus(a), -softplus(-a) - softplus(b))
    with softplus(x) = log(1 + exp(x)) = torch.logaddexp(x, 0).
    """
    a, b = logits[:, 0], logits[:, 1]

    def softplus(t):
        return torch.logaddexp(t, torch.zeros_like(t))   # exact for any finite t

    log_p = -softplus(-a) - softplus(-b)                 # log sigmoid(a) + log sigmoid(b)
    log_not_p = torch.logaddexp(-softplus(a), -softplus(-a) - softplus(b))   # log(sigmoid(-a) + sigmoid(a) sigmoid(-b))
    return torch.stack([a, log_p - log_not_p], dim=1)    # (N, 2)
