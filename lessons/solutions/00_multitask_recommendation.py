"""Answers to the exercises of lesson 00 (one block per exercise cell)."""

# EXERCISE 00.anticorrelated_tasks
def anticorrelated_setting():
    """(correlation, scale) for mm.data.make_synthetic such that, with seed=0, the label correlation
    corr(y1, y2) is below -0.5 for every shape_seed from 0 to 7."""
    # A negative knob, and a scale large enough that the linear part c * u . x (its standard
    # deviation is c) outweighs the bounded sinusoids (at most m = 10 in size): R^2 near 1.
    return -0.9, 10.0
