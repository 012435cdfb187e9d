"""minimoe: multi-task learning for recommendation (Shared-Bottom, OMoE, MMoE, CGC, PLE) from first
principles, in NumPy, with every backward pass written by hand and checked."""

from . import analysis, data, fusion, gradcheck, metrics
from .inputs import FeatureBatch, FeatureInput
from .layers import MLP, Dropout, Embedding, Linear, ReLU, Sigmoid, Softmax
from .losses import MultiTaskLoss
from .models import CGC, ESMM, MODELS, PLE, HeadedModel, MixtureModel, MMoE, MultiTaskModel, OMoE, SharedBottom
from .module import Module, ModuleDict, ModuleList, Sequential
from .moe import ExpertGroup, Experts, Gate, GateSpec, MixtureLayer
from .optim import SGD, Adam
from .serialization import load
from .tasks import BinaryTask, RegressionTask, Task
from .train import History, NonFiniteLossError, evaluate, fit
from .transforms import TargetTransform
from .weighting import GradNormLoss, UncertaintyWeightedLoss, task_gradient_norms

__version__ = "0.1.0"

__all__ = ["Adam", "BinaryTask", "CGC", "Dropout", "ESMM", "Embedding", "ExpertGroup", "Experts", "FeatureBatch",
           "FeatureInput", "Gate", "GateSpec", "GradNormLoss", "HeadedModel", "History", "Linear", "MLP", "MMoE",
           "MODELS", "MixtureLayer", "MixtureModel", "Module", "ModuleDict", "ModuleList", "MultiTaskLoss",
           "MultiTaskModel", "NonFiniteLossError", "OMoE", "PLE", "ReLU", "RegressionTask", "SGD", "Sequential",
           "SharedBottom", "Sigmoid", "Softmax", "TargetTransform", "Task", "UncertaintyWeightedLoss", "analysis",
           "data", "evaluate", "fit", "fusion", "gradcheck", "load", "metrics", "task_gradient_norms"]
