"""Answers to the exercises of lesson 06 (one block per exercise cell)."""

# EXERCISE 06.embedding_backward
def embedding_backward(ids, dY, num_embeddings):
    """The gradient of an embedding lookup Y = W[ids] with respect to its table W.

    ids: (N,) ints in [0, num_embeddings); dY: (N, d), dL/dY. Returns dW: (num_embeddings, d), whose
    row v is the sum of dY[n] over every n with ids[n] == v (a row of zeros for an id not in the batch).
    Do not build the (N, V) one-hot matrix.
    """
    dW = np.zeros((num_embeddings, dY.shape[1]), dtype=dY.dtype)     # (V, d)
    np.add.at(dW, ids, dY)                                           # unbuffered: repeated ids accumulate
    return dW


# EXERCISE 06.one_column_auc
def one_column_auc(labels, column):
    """AUC of scoring the rows by one column, in whichever direction ranks them better.

    labels: (N,) 0/1; column: (N,) one encoded numeric column. Use auc(labels, scores) from
    minimoe.metrics. Returns a float in [0.5, 1].
    """
    upwards = auc(labels, column)
    return max(upwards, 1.0 - upwards)      # reversing the order swaps every pair: 1 - AUC (ties stay half)
