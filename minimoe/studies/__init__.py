"""Studies that USE the library: the MMoE paper's synthetic experiments, the Census-Income study,
their plots, and the gradient-check table of ``minimoe gradcheck``. Nothing in the core imports
this package."""
