"""Plausible wrong answers to the exercises of lesson 06: each must be rejected by its check."""

# MISTAKE 06.embedding_backward: builds the (N, V) one-hot matrix the exercise forbids (right numbers, N x V memory)
# EXERCISE 06.embedding_backward
def embedding_backward(ids, dY, num_embeddings):
    O = np.zeros((len(ids), num_embeddings))
    O[np.arange(len(ids)), ids] = 1.0
    return O.T @ dY


# MISTAKE 06.embedding_backward: buffered dW[ids] += dY: a repeated id keeps only one of its rows
# EXERCISE 06.embedding_backward
def embedding_backward(ids, dY, num_embeddings):
    dW = np.zeros((num_embeddings, dY.shape[1]))
    dW[ids] += dY
    return dW


# MISTAKE 06.embedding_backward: the one-hot matrix as rows of an identity, np.eye(V)[ids]
# EXERCISE 06.embedding_backward
def embedding_backward(ids, dY, num_embeddings):
    return np.eye(num_embeddings)[ids].T @ dY


# MISTAKE 06.embedding_backward: one row per distinct id in the batch (np.unique), not one per id of the table
# EXERCISE 06.embedding_backward
def embedding_backward(ids, dY, num_embeddings):
    values, where = np.unique(ids, return_inverse=True)
    dW = np.zeros((len(values), dY.shape[1]))
    np.add.at(dW, where, dY)
    return dW


# MISTAKE 06.bootstrap_auc: a tied negative counted as 0 (only the drawn negatives strictly below)
# EXERCISE 06.bootstrap_auc
def bootstrap_auc(labels, scores, counts):
    order = np.argsort(scores, kind="stable")
    s, positive, c = scores[order], labels[order] == 1, counts[order]
    drawn_positive = c * positive[:, None]
    negatives_up_to = np.zeros((len(s) + 1, c.shape[1]))
    np.cumsum(c - drawn_positive, axis=0, out=negatives_up_to[1:])
    below = np.searchsorted(s, s, "left")
    pairs = (drawn_positive * negatives_up_to[below]).sum(axis=0)
    return pairs / (drawn_positive.sum(axis=0) * negatives_up_to[-1])


# MISTAKE 06.bootstrap_auc: the positive rows not weighted by how often the resample drew them
# EXERCISE 06.bootstrap_auc
def bootstrap_auc(labels, scores, counts):
    order = np.argsort(scores, kind="stable")
    s, positive, c = scores[order], labels[order] == 1, counts[order]
    negatives = c * (~positive)[:, None]
    negatives_up_to = np.zeros((len(s) + 1, c.shape[1]))
    np.cumsum(negatives, axis=0, out=negatives_up_to[1:])
    below, at_most = np.searchsorted(s, s, "left"), np.searchsorted(s, s, "right")
    pairs = (positive[:, None] * (negatives_up_to[below] + negatives_up_to[at_most]) / 2).sum(axis=0)
    return pairs / (positive.sum() * negatives_up_to[-1])


# MISTAKE 06.bootstrap_auc: ties broken by the sort order: the cumulative count at the row's own position
# EXERCISE 06.bootstrap_auc
def bootstrap_auc(labels, scores, counts):
    order = np.argsort(scores, kind="stable")
    positive, c = labels[order] == 1, counts[order]
    drawn_positive = c * positive[:, None]
    negatives_before = np.cumsum(c - drawn_positive, axis=0) - (c - drawn_positive)
    pairs = (drawn_positive * negatives_before).sum(axis=0)
    return pairs / (drawn_positive.sum(axis=0) * (c - drawn_positive).sum(axis=0))


# MISTAKE 06.bootstrap_auc: right numbers, but a Python loop over the resamples
# EXERCISE 06.bootstrap_auc
def bootstrap_auc(labels, scores, counts):
    return np.array([auc(np.repeat(labels, counts[:, b]), np.repeat(scores, counts[:, b]))
                     for b in range(counts.shape[1])])
