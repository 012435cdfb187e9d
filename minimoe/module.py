"""The Module base class: named parameters, gradients that accumulate, children found by recursion,
a training mode, and one flat buffer per dtype that the optimizer steps.

The contract every module keeps (the docs call it "the module contract"):

- ``params`` and ``grads`` present the module's own arrays and every descendant's under dotted names
  (``levels.0.experts.shared.W0``, ``towers.1.layers.2.b``). They are the live arrays, not copies:
  an optimizer that updates ``model.params[name]`` in place updates the module, and a gradient check
  that nudges it changes what ``forward`` computes.
- ``forward(x)`` computes the output and keeps what ``backward`` needs.
- ``backward(dout)`` is the vector-Jacobian product of the last forward: it returns d loss / d input
  and ADDS (``+=``) the parameter gradients into ``grads``. It is linear in ``dout``
  (``backward(a) + backward(b)`` adds the same gradients as ``backward(a + b)``) and may be called
  several times after one forward. It never writes into ``dout``.
- A regulariser that is not a function of ``dout`` (the load-balancing loss of a gate) has its own
  pair of calls: ``auxiliary_loss()`` is its value in the last forward and ``backward_auxiliary()``
  adds its gradient, once per training step.
- ``train()`` and ``eval()`` set the mode of the whole tree; a module reads ``self.training``.
- Every sub-module is registered: assigning a Module to an attribute registers it as a child under
  that name (as in PyTorch), so ``named_modules()`` finds a softmax or a dropout too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np


def add_gradients(a, b):
    """a + b for gradients that may be None ("no gradient"); writes into neither."""
    if a is None or b is None:
        return b if a is None else a
    return a + b


class _PackAfterConstruction(type):
    """Packs every module's parameters into flat buffers as soon as its constructor returns."""

    def __call__(cls, *args, **kwargs):
        module = super().__call__(*args, **kwargs)
        module.flat_parameters()
        return module


class Module(metaclass=_PackAfterConstruction):
    """Base class for every building block, model and loss with parameters.

    Subclasses call ``super().__init__()`` first, register arrays with ``add_param`` and sub-modules
    by assignment (``self.gate = Gate(...)``) or ``add_child(name, module)``, and implement
    ``forward`` and ``backward``. ``backward(dout, input_grad=False)`` may skip the input gradient
    and return None: training never needs d loss / d X, and for a model's first layer it is a whole
    matrix product.
    """

    # Bumped whenever a parameter or child is registered or parameters move into a new buffer, so a
    # packed module re-verifies its buffers only after something changed (see ``flat_parameters``).
    _structure_version = 0

    def __init__(self) -> None:
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_grads", {})
        object.__setattr__(self, "_children", {})
        object.__setattr__(self, "_flat", None)          # (version, {dtype: (params, grads)}, count)
        self.training = True

    # -- registration -------------------------------------------------------------------------
    @classmethod
    def _structure_changed(cls) -> None:
        Module._structure_version += 1

    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register a trainable array (and a zero gradient of its shape); returns the array."""
        if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
            raise TypeError(f"parameter {name!r} must be a float ndarray, got {type(value).__name__}")
        if "." in name or name in self._params or name in self._children:
            raise ValueError(f"parameter name {name!r} is dotted or already used in {type(self).__name__}")
        self._params[name] = value
        self._grads[name] = np.zeros_like(value)
        self._structure_changed()
        return value

    def add_child(self, name: str, module: Module) -> Module:
        """Register a sub-module under ``name`` (``ModuleList`` names its children 0, 1, ...)."""
        if not isinstance(module, Module):
            raise TypeError(f"child {name!r} must be a Module, got {type(module).__name__}")
        if "." in name or name in self._params or name in self._children:
            raise ValueError(f"child name {name!r} is dotted or already used in {type(self).__name__}")
        self._children[name] = module
        self._structure_changed()
        return module

    def __setattr__(self, name: str, value) -> None:
        children = self.__dict__.get("_children")
        if isinstance(value, Module) and not name.startswith("_"):
            if children is None:
                raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning sub-modules")
            if name in self._params:
                raise ValueError(f"child name {name!r} is already a parameter of {type(self).__name__}")
            children[name] = value                       # registered (or replaced) under the attribute name
            self._structure_changed()
        elif children is not None and name in children:
            del children[name]                           # e.g. an optional child set back to None
            self._structure_changed()
        object.__setattr__(self, name, value)

    # -- the tree -----------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Yield (dotted name, module) for this module and every descendant, depth first."""
        yield prefix, self
        for name, child in self._children.items():
            yield from child.named_modules(f"{prefix}{name}.")

    def modules(self) -> Iterator[Module]:
        return (module for _, module in self.named_modules())

    def children(self) -> dict[str, Module]:
        """The direct sub-modules by name (a copy of the registry)."""
        return dict(self._children)

    def own_params(self) -> dict[str, np.ndarray]:
        """This module's own arrays, without its children's (the live arrays)."""
        return dict(self._params)

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Every trainable array below this module, by dotted name (the live arrays)."""
        return {f"{prefix}{name}": value for prefix, module in self.named_modules()
                for name, value in module._params.items()}

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """The gradient array of every entry of ``params``, same keys, same shapes (live arrays)."""
        return {f"{prefix}{name}": value for prefix, module in self.named_modules()
                for name, value in module._grads.items()}

    def n_params(self) -> int:
        """Number of trainable scalars."""
        return sum(value.size for value in self.params.values())

    # -- training mode ------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (``mode=True``) or evaluation mode for this module and every descendant.
        Dropout draws masks and regularisers count only in training mode. Returns the module."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode for the whole tree (``train(False)``)."""
        return self.train(False)

    @contextlib.contextmanager
    def mode(self, training: bool):
        """``with model.mode(training=False): ...`` runs the block in that mode and then puts every
        module of the tree back in the mode it had."""
        before = [(module, module.training) for module in self.modules()]
        self.train(training)
        try:
            yield self
        finally:
            for module, was_training in before:
                module.training = was_training

    # -- the flat buffers ---------------------------------------------------------------------
    def _owners(self) -> list[tuple[Module, str]]:
        return [(module, name) for module in self.modules() for name in module._params]

    def _pack(self) -> None:
        """Move every parameter (and gradient) below this module into one contiguous 1-D buffer
        per dtype; each array becomes a view of its buffer (same shape, same values)."""
        owners = self._owners()
        buffers = {}
        for dtype in sorted({module._params[name].dtype.name for module, name in owners}):
            members = [(module, name) for module, name in owners if module._params[name].dtype.name == dtype]
            flat_params = np.empty(sum(module._params[name].size for module, name in members), dtype=dtype)
            flat_grads = np.zeros_like(flat_params)
            offset = 0
            for module, name in members:
                value, size = module._params[name], module._params[name].size
                view = flat_params[offset:offset + size].reshape(value.shape)   # a view of the buffer
                view[...] = value
                module._params[name] = view
                gradient = flat_grads[offset:offset + size].reshape(value.shape)
                gradient[...] = module._grads[name]
                module._grads[name] = gradient
                offset += size
            buffers[dtype] = (flat_params, flat_grads)
        self._structure_changed()
        object.__setattr__(self, "_flat", (Module._structure_version, buffers, len(owners)))

    def _flat_is_current(self) -> bool:
        """True when every parameter below this module is a view of this module's buffers."""
        if self._flat is None:
            return False
        version, buffers, count = self._flat
        if version == Module._structure_version:
            return True
        owners = self._owners()
        if len(owners) != count:
            return False
        for module, name in owners:
            pair = buffers.get(module._params[name].dtype.name)
            if pair is None or module._params[name].base is not pair[0] or module._grads[name].base is not pair[1]:
                return False
        object.__setattr__(self, "_flat", (Module._structure_version, buffers, count))
        return True

    def flat_parameters(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """({dtype: parameter buffer}, {dtype: gradient buffer}): every parameter below this module,
        in one contiguous 1-D array per dtype, of which ``params`` are views.

        An element-wise optimizer (SGD, Adam) then updates the whole model in a handful of NumPy calls
        instead of a handful per array, and ``zero_grad`` is one ``fill``. The buffers are checked
        before they are handed out: after a parameter or child was added (or a sub-module packed on
        its own) they are rebuilt, so no parameter can escape the optimizer or ``zero_grad``.
        Arrays taken from ``params`` before such a rebuild are no longer the live ones.
        """
        if not self._flat_is_current():
            self._pack()
        buffers = self._flat[1]
        return ({dtype: pair[0] for dtype, pair in buffers.items()},
                {dtype: pair[1] for dtype, pair in buffers.items()})

    def zero_grad(self) -> None:
        for grads in self.flat_parameters()[1].values():
            grads.fill(0.0)

    # -- the computation ----------------------------------------------------------------------
    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout, input_grad: bool = True):  # pragma: no cover - abstract
        raise NotImplementedError

    def auxiliary_loss(self) -> float:
        """The value of the regularisers below this module in the last forward (0 when there are
        none). A module with a regulariser of its own adds its value to this sum of its children's."""
        return sum((child.auxiliary_loss() for child in self._children.values()), 0.0)

    def backward_auxiliary(self, input_grad: bool = True):
        """Add the gradient of ``auxiliary_loss()`` into ``grads`` and return its gradient with
        respect to the input (None when there is none). Called once per training step."""
        return None

    def __call__(self, x):
        return self.forward(x)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self._params.items())
        return f"{type(self).__name__}({shapes})"


class ModuleList(Module):
    """Children kept in order and named ``0``, ``1``, ... (one tower or level per entry, say)."""

    def __init__(self, modules: list[Module] = ()) -> None:
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> Module:
        return self.add_child(str(len(self._children)), module)

    def __len__(self) -> int:
        return len(self._children)

    def __getitem__(self, index: int) -> Module:
        return list(self._children.values())[index]

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._children.values()))


class ModuleDict(Module):
    """Children kept by name (one expert group or gate per entry: ``shared``, ``task0``, ...)."""

    def __init__(self, modules: dict[str, Module]) -> None:
        super().__init__()
        for name, module in modules.items():
            self.add_child(name, module)

    def __len__(self) -> int:
        return len(self._children)

    def __getitem__(self, name: str) -> Module:
        return self._children[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._children)

    def items(self):
        return self._children.items()

    def values(self):
        return self._children.values()


class Sequential(ModuleList):
    """Children applied in order, so parameters read ``layers.2.W``."""

    def forward(self, x):
        for module in self:
            x = module.forward(x)
        return x

    def backward(self, dout, input_grad: bool = True):
        modules = list(self)
        for index in reversed(range(len(modules))):
            # Only the first module's input is this sequence's input.
            dout = modules[index].backward(dout, input_grad=input_grad or index > 0)
        return dout
