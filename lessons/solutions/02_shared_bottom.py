"""Answers to the exercises of lesson 02 (one block per exercise cell)."""

# EXERCISE 02.shared_bottom_backward
def shared_bottom_backward(model, dscores):
    """The backward pass of a SharedBottom, called right after model.forward(X).

    dscores: (N, T), dL/ds. Each tower's backward gets its own column and returns the gradient of
    its input, dR^(k): (N, H); the bottom's backward gets what the bottom's output R receives.
    Returns dX: (N, D). Parameter gradients are added into model.grads by the modules' backward calls.
    """
    dR = [tower.backward(dscores[:, k:k + 1]) for k, tower in enumerate(model.towers)]   # T x (N, H)
    return model.bottom.backward(sum(dR))              # the fan-in: R feeds every tower, so dR is the sum


# EXERCISE 02.zero_weight
def gradients_with_weights(model, X, Y, weights):
    """One forward, MultiTaskLoss (with these task weights) and backward of `model` on (X, Y), on
    zeroed gradients. X: (N, D), Y: (N, T), weights: T numbers.
    Returns {parameter name: a copy of its gradient} for every parameter of the model.
    """
    loss = mm.MultiTaskLoss(model.tasks, weights=weights)
    model.zero_grad()
    loss.forward(model.forward(X), Y)
    model.backward(loss.backward())
    return {name: grad.copy() for name, grad in model.grads.items()}
