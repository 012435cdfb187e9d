"""Answers to the exercises of lesson 01 (one block per exercise cell)."""

# EXERCISE 01.linear_backward
def linear_backward(x, W, dy):
    """The backward pass of y = x @ W + b.

    x: (N, D_in), the layer's input; W: (D_in, D_out), its weight; dy: (N, D_out), dL/dy.
    Returns the tuple (dx, dW, db) of shapes (N, D_in), (D_in, D_out), (D_out,).
    """
    dx = dy @ W.T                 # (N, D_out)(D_out, D_in): x_ni reaches every output j of row n
    dW = x.T @ dy                 # (D_in, N)(N, D_out): W_ij is used by every row
    db = dy.sum(axis=0)           # (D_out,): b_j is added to every row
    return dx, dW, db


# EXERCISE 01.sigmoid_backward
def sigmoid_backward(s, y, dy):
    """The backward pass of y = sigmoid(s), element-wise.

    s: (N, D), the input; y: (N, D), the output sigmoid(s) from the forward pass; dy: (N, D), dL/dy.
    Returns dx: (N, D), dL/ds, finite for any finite s.
    """
    # sigma'(s) = e^-s / (1 + e^-s)^2 = sigma(s) (1 - sigma(s)): the forward output, no exp to overflow
    return dy * y * (1.0 - y)


# EXERCISE 01.bce_gradient
def bce_gradient(s, y):
    """d ell / d s for binary cross-entropy on logits, element-wise.

    s: (N,) logits, any finite value (the check uses -50 and 50); y: (N,) labels, 0 or 1.
    Returns (N,), finite everywhere.
    """
    # d/ds [s - s y + log(1 + e^-s)] = 1 - y - e^-s / (1 + e^-s) = 1 - y - (1 - sigma(s)) = sigma(s) - y
    return sigmoid(s) - y         # the stable sigmoid: exp only of -|s|


# EXERCISE 01.leaky_relu
class LeakyReLU(mm.Module):
    """y = x where x > 0, slope * x elsewhere; element-wise, no parameters."""

    def __init__(self, slope=0.01):
        super().__init__()
        self.slope = slope

    def forward(self, x):                                      # x: (N, D) -> y: (N, D)
        self.positive = x > 0                                  # kept for backward
        return np.where(self.positive, x, self.slope * x)

    def backward(self, dy, input_grad=True):                   # dy: (N, D) -> dx: (N, D)
        return np.where(self.positive, dy, self.slope * dy) if input_grad else None
