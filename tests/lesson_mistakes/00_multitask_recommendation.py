"""Plausible wrong answers to lesson 00's exercises; the lesson's check cells must reject each one
(tests/test_lessons.py). Each block: a "# MISTAKE <id>: <what is wrong>" line, then the cell."""

# MISTAKE 00.anticorrelated_tasks: the knob alone at the default scale (two shapes stay above -0.5)
# EXERCISE 00.anticorrelated_tasks
def anticorrelated_setting():
    return -1.0, 1.0


# MISTAKE 00.anticorrelated_tasks: a large scale but a positive knob (correlated, not anti-correlated)
# EXERCISE 00.anticorrelated_tasks
def anticorrelated_setting():
    return 1.0, 10.0


# MISTAKE 00.anticorrelated_tasks: p = -0.5 at a large scale: R^2 < 1 keeps every shape just above -0.5
# EXERCISE 00.anticorrelated_tasks
def anticorrelated_setting():
    return -0.5, 10.0
