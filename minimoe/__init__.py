"""minimoe: multi-task learning for recommendation (Shared-Bottom, OMoE, MMoE) from first
principles, in NumPy, with every backward pass written by hand and checked."""

from . import analysis, data, fusion, gradcheck, metrics
from .inputs import FeatureBatch, FeatureInput
from .layers import MLP, Dropout, Embedding, Linear, ReLU, Sigmoid, Softmax
from .losses import MultiTaskLoss
from .models import MMoE, OMoE, SharedBottom
from .module import Module, ModuleList, Sequential
from .moe import Experts, Gate
from .optim import SGD, Adam
from .serialization import load
from .train import History, NonFiniteLossError, evaluate, fit
from .transforms import TargetTransform
from .weighting import GradNormLoss, UncertaintyWeightedLoss, task_gradient_norms

__version__ = "0.1.0"

__all__ = ["Adam", "Dropout", "Embedding", "Experts", "FeatureBatch", "FeatureInput", "Gate", "GradNormLoss", "History",
           "Linear", "MLP", "MMoE", "Module", "ModuleList", "MultiTaskLoss", "NonFiniteLossError", "OMoE", "ReLU",
           "SGD", "Sequential", "SharedBottom", "Sigmoid", "Softmax", "TargetTransform", "UncertaintyWeightedLoss",
           "analysis", "data", "evaluate", "fit", "fusion", "gradcheck", "load", "metrics", "task_gradient_norms"]
