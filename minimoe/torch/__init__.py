"""minimoe.torch: a minimoe model as a ``torch.nn.Module`` of the same structure, and back.

An optional extra: ``pip install -e ".[torch]"``. ``import minimoe`` never imports PyTorch; only
``import minimoe.torch`` does.

    net = to_torch(model)          # SharedBottom, OMoE, MMoE, CGC, PLE or ESMM -> torch.nn.Module
    net(torch_inputs(X, net))      # the same scores; autograd gives the same gradients
    net.predict(torch_inputs(X, net))   # as model.predict(X) (ESMM: net.predict_cvr for pCVR)
    from_torch(net, model)         # trained weights back into the minimoe model

The module's parameters carry minimoe's names (``dict(net.named_parameters())`` has the keys of
``model.params``) and start as copies of its arrays, in its dtype. ``train_distributed`` trains
a converted model with DistributedDataParallel on several processes (``distributed.py``).
"""

try:
    import torch  # noqa: F401  (absolute: PyTorch itself, not this package)
except ImportError as error:                                  # pragma: no cover - torch is installed in CI
    raise ImportError('minimoe.torch needs PyTorch, which is not installed here. Install the extra from the '
                      'repository root: pip install -e ".[torch]"') from error

from .convert import from_torch, to_torch, torch_inputs
from .distributed import TrainingRun, global_batches, train_distributed, train_steps
from .losses import MultiTaskLoss, UncertaintyWeightedLoss, task_loss_sums

__all__ = ["MultiTaskLoss", "TrainingRun", "UncertaintyWeightedLoss", "from_torch", "global_batches", "task_loss_sums",
           "to_torch", "torch_inputs", "train_distributed", "train_steps"]
