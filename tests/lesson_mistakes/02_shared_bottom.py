"""Plausible wrong answers to lesson 02's exercises; the lesson's check cells must reject each one
(tests/test_lessons.py). Each block: a "# MISTAKE <id>: <what is wrong>" line, then the cell."""

# MISTAKE 02.shared_bottom_backward: no fan-in: each tower's dR replaces the one before (the last tower wins)
# EXERCISE 02.shared_bottom_backward
def shared_bottom_backward(model, dscores):
    for k, tower in enumerate(model.towers):
        dR = tower.backward(dscores[:, k:k + 1])
    return model.bottom.backward(dR)


# MISTAKE 02.shared_bottom_backward: the towers' gradients averaged instead of added
# EXERCISE 02.shared_bottom_backward
def shared_bottom_backward(model, dscores):
    dR = [tower.backward(dscores[:, k:k + 1]) for k, tower in enumerate(model.towers)]
    return model.bottom.backward(sum(dR) / len(dR))


# MISTAKE 02.shared_bottom_backward: a 1-D column dscores[:, k] handed to the tower
# EXERCISE 02.shared_bottom_backward
def shared_bottom_backward(model, dscores):
    dR = [tower.backward(dscores[:, k]) for k, tower in enumerate(model.towers)]
    return model.bottom.backward(sum(dR))


# MISTAKE 02.shared_bottom_backward: the bottom's backward never runs; the summed dR is returned as dX
# EXERCISE 02.shared_bottom_backward
def shared_bottom_backward(model, dscores):
    return sum(tower.backward(dscores[:, k:k + 1]) for k, tower in enumerate(model.towers))


# MISTAKE 02.zero_weight: the gradients not zeroed first, so they add to what the model already held
# EXERCISE 02.zero_weight
def gradients_with_weights(model, X, Y, weights):
    loss = mm.MultiTaskLoss(model.tasks, weights=weights)
    loss.forward(model.forward(X), Y)
    model.backward(loss.backward())
    return {name: grad.copy() for name, grad in model.grads.items()}


# MISTAKE 02.zero_weight: the weights ignored (an unweighted MultiTaskLoss)
# EXERCISE 02.zero_weight
def gradients_with_weights(model, X, Y, weights):
    loss = mm.MultiTaskLoss(model.tasks)
    model.zero_grad()
    loss.forward(model.forward(X), Y)
    model.backward(loss.backward())
    return {name: grad.copy() for name, grad in model.grads.items()}


# MISTAKE 02.zero_weight: the model's own gradient arrays returned, not copies
# EXERCISE 02.zero_weight
def gradients_with_weights(model, X, Y, weights):
    loss = mm.MultiTaskLoss(model.tasks, weights=weights)
    model.zero_grad()
    loss.forward(model.forward(X), Y)
    model.backward(loss.backward())
    return dict(model.grads)
