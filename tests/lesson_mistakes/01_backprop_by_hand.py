"""Plausible wrong answers to lesson 01's exercises; the lesson's check cells must reject each one
(tests/test_lessons.py). Each block: a "# MISTAKE <id>: <what is wrong>" line, then the cell."""

# MISTAKE 01.linear_backward: dW as dy^T x, the transpose of the right product
# EXERCISE 01.linear_backward
def linear_backward(x, W, dy):
    return dy @ W.T, dy.T @ x, dy.sum(axis=0)


# MISTAKE 01.linear_backward: db as the mean over the rows instead of the sum
# EXERCISE 01.linear_backward
def linear_backward(x, W, dy):
    return dy @ W.T, x.T @ dy, dy.mean(axis=0)


# MISTAKE 01.linear_backward: db summed over the output units (axis 1) instead of the rows
# EXERCISE 01.linear_backward
def linear_backward(x, W, dy):
    return dy @ W.T, x.T @ dy, dy.sum(axis=1)


# MISTAKE 01.leaky_relu: the slope forgotten in backward (ReLU's mask)
# EXERCISE 01.leaky_relu
class LeakyReLU(mm.Module):
    def __init__(self, slope=0.01):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        self.positive = x > 0
        return np.where(self.positive, x, self.slope * x)

    def backward(self, dy, input_grad=True):
        return dy * self.positive if input_grad else None


# MISTAKE 01.leaky_relu: the slope where the negative side needs slope * dy (dy forgotten)
# EXERCISE 01.leaky_relu
class LeakyReLU(mm.Module):
    def __init__(self, slope=0.01):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        self.positive = x > 0
        return np.where(self.positive, x, self.slope * x)

    def backward(self, dy, input_grad=True):
        return np.where(self.positive, dy, self.slope) if input_grad else None


# MISTAKE 01.leaky_relu: the mask taken from the sign of dy instead of x
# EXERCISE 01.leaky_relu
class LeakyReLU(mm.Module):
    def __init__(self, slope=0.01):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        return np.where(x > 0, x, self.slope * x)

    def backward(self, dy, input_grad=True):
        return np.where(dy > 0, dy, self.slope * dy) if input_grad else None


# MISTAKE 01.sigmoid_backward: the factor (1 - y) missing
# EXERCISE 01.sigmoid_backward
def sigmoid_backward(s, y, dy):
    return dy * y


# MISTAKE 01.sigmoid_backward: written in s with exp: inf / inf = nan at s = -800
# EXERCISE 01.sigmoid_backward
def sigmoid_backward(s, y, dy):
    e = np.exp(-s)
    return dy * e / (1.0 + e) ** 2


# MISTAKE 01.sigmoid_backward: the derivative alone, the upstream gradient dy forgotten
# EXERCISE 01.sigmoid_backward
def sigmoid_backward(s, y, dy):
    return y * (1.0 - y)


# MISTAKE 01.bce_gradient: the naive sigmoid 1 / (1 + exp(-s)): exp overflows at s = -800
# EXERCISE 01.bce_gradient
def bce_gradient(s, y):
    return 1.0 / (1.0 + np.exp(-s)) - y


# MISTAKE 01.bce_gradient: the sign flipped (label minus prediction)
# EXERCISE 01.bce_gradient
def bce_gradient(s, y):
    return y - sigmoid(s)


# MISTAKE 01.bce_gradient: the two-step chain dl/dp * dp/ds through p: nan where p rounds to 0 or 1
# EXERCISE 01.bce_gradient
def bce_gradient(s, y):
    p = sigmoid(s)
    return (-y / p + (1 - y) / (1 - p)) * p * (1 - p)
