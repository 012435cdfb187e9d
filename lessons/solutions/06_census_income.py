"""Answers to the exercises of lesson 06 (one block per exercise cell)."""

# EXERCISE 06.embedding_backward
def embedding_backward(ids, dY, num_embeddings):
    """The gradient of an embedding lookup Y = W[ids] with respect to its table W.

    ids: (N,) ints in [0, num_embeddings); dY: (N, d), dL/dY. Returns dW: (num_embeddings, d).
    Do not build the (N, V) one-hot matrix.
    """
    # Y = O W gives dW = O^T dY: row v of dW is the sum of the rows of dY whose id is v.
    dW = np.zeros((num_embeddings, dY.shape[1]), dtype=dY.dtype)     # (V, d)
    np.add.at(dW, ids, dY)                                           # unbuffered: repeated ids accumulate
    return dW


# EXERCISE 06.bootstrap_auc
def bootstrap_auc(labels, scores, counts):
    """The AUC of every bootstrap resample, all at once.

    labels: (N,) 0/1; scores: (N,) one model's scores for one task; counts: (N, B) ints, counts[n, b] = how
    many times resample b drew row n. Returns (B,) floats, the AUC of each resample (ties count one half).
    No Python loop over the B resamples.
    """
    order = np.argsort(scores, kind="stable")                            # one sort for all resamples
    s, positive, c = scores[order], labels[order] == 1, counts[order]    # c: (N, B), sorted by score
    drawn_positive = c * positive[:, None]                               # (N, B)
    negatives_up_to = np.zeros((len(s) + 1, c.shape[1]))                 # (N + 1, B): row i = drawn negatives among the first i
    np.cumsum(c - drawn_positive, axis=0, out=negatives_up_to[1:])
    below, at_most = np.searchsorted(s, s, "left"), np.searchsorted(s, s, "right")   # (N,): ends of each tie run
    pairs = (drawn_positive * (negatives_up_to[below] + negatives_up_to[at_most]) / 2).sum(axis=0)   # (B,)
    return pairs / (drawn_positive.sum(axis=0) * negatives_up_to[-1])    # / (P_b Q_b)
