"""The Module base class: named parameters, gradients that accumulate, children found by recursion,
and a training mode.

The contract every module keeps (the docs call it "the module contract"):

- ``params`` and ``grads`` present the module's own arrays and every descendant's under dotted names
  (``levels.0.experts.shared.W0``, ``towers.1.layers.2.b``). They are the live arrays, not copies:
  an optimizer that updates ``model.params[name]`` in place updates the module, and a gradient check
  that nudges it changes what ``forward`` computes. A parameter is the array ``add_param`` stored,
  for its whole life, so a module may also keep it as an attribute (``self.w = self.add_param(...)``).
  The two dicts are read-only views: replacing an entry would train an array nobody reads.
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
from collections.abc import Iterator, Mapping

import numpy as np


def add_gradients(a, b):
    """a + b for gradients that may be None ("no gradient"); writes into neither."""
    if a is None or b is None:
        return b if a is None else a
    return a + b


def expect_shape(module: Module, name: str, gradient, shape: tuple) -> None:
    """A clear error unless the upstream gradient has ``shape``, the shape of the module's last
    forward output: NumPy would otherwise broadcast a (N,) against a (N, 1) silently, or fail deep
    inside with a message about operands."""
    if getattr(gradient, "shape", None) != shape:
        raise ValueError(f"{type(module).__name__}.backward expects {name} of shape {tuple(shape)} "
                         f"(the shape of its last forward's output), got {np.shape(gradient)}")


class ArrayView(Mapping):
    """A read-only dict of a module tree's live arrays, by dotted name (``model.params``).

    Reading ``view[name]`` gives the array itself, to read or to change in place
    (``view[name][...] = value``, ``view[name] += g``). Assigning another array, ``view[name] =
    array``, is refused: the module would go on reading its own array, and the new one would be
    trained or loaded in vain.
    """

    def __init__(self, arrays: dict[str, np.ndarray], what: str) -> None:
        self._arrays, self._what = arrays, what

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._arrays[name]
        except KeyError:
            raise KeyError(f"no {self._what} named {name!r}; the names are {list(self._arrays)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __setitem__(self, name, value) -> None:
        if name in self._arrays and value is self._arrays[name]:
            return                        # ``view[name] += g`` adds in place, then assigns the same array back
        raise TypeError(f"{self._what} cannot be replaced: write into the array in place instead, "
                        f"e.g. model.{self._what}[{name!r}][...] = value")

    def __delitem__(self, name) -> None:
        raise TypeError(f"{self._what} cannot be removed from a module")

    def __repr__(self) -> str:
        return f"{self._what}({', '.join(f'{k}{tuple(v.shape)}' for k, v in self._arrays.items())})"


class Module:
    """Base class for every building block, model and loss with parameters.

    Subclasses call ``super().__init__()`` first, register arrays with ``add_param`` and sub-modules
    by assignment (``self.gate = Gate(...)``) or ``add_child(name, module)``, and implement
    ``forward`` and ``backward``. ``backward(dout, input_grad=False)`` may skip the input gradient
    and return None: training never needs d loss / d X, and for a model's first layer it is a whole
    matrix product. The parameter gradients must not depend on ``input_grad``.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_grads", {})
        object.__setattr__(self, "_children", {})
        self.training = True

    # -- registration -------------------------------------------------------------------------
    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register a trainable array (and a zero gradient of its shape); returns the array, which
        stays the parameter for the module's whole life."""
        if "_params" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before add_param")
        if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
            raise TypeError(f"parameter {name!r} must be a float ndarray, got {type(value).__name__}")
        if "." in name or name in self._params or name in self._children:
            raise ValueError(f"parameter name {name!r} is dotted or already used in {type(self).__name__}")
        self._params[name] = value
        self._grads[name] = np.zeros_like(value)
        return value

    def add_child(self, name: str, module: Module) -> Module:
        """Register a sub-module under ``name`` (``ModuleList`` names its children 0, 1, ...)."""
        if not isinstance(module, Module):
            raise TypeError(f"child {name!r} must be a Module, got {type(module).__name__}")
        if "." in name or name in self._params or name in self._children:
            raise ValueError(f"child name {name!r} is dotted or already used in {type(self).__name__}")
        self._children[name] = module
        return module

    def __setattr__(self, name: str, value) -> None:
        children = self.__dict__.get("_children")
        if isinstance(value, Module) and not name.startswith("_"):
            if children is None:
                raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning sub-modules")
            if name in self._params:
                raise ValueError(f"child name {name!r} is already a parameter of {type(self).__name__}")
            children[name] = value                       # registered (or replaced) under the attribute name
        elif children is not None and name in children:
            del children[name]                           # e.g. an optional child set back to None
        object.__setattr__(self, name, value)

    # -- the tree -----------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Yield (dotted name, module) for this module and every descendant, depth first."""
        # An explicit stack rather than nested generators: a step walks the tree a few times, and
        # each level of generator nesting would cost every module below it.
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            yield name, module
            stack.extend((f"{name}{child_name}.", child) for child_name, child in reversed(module._children.items()))

    def modules(self) -> Iterator[Module]:
        return (module for _, module in self.named_modules())

    def children(self) -> dict[str, Module]:
        """The direct sub-modules by name (a copy of the registry)."""
        return dict(self._children)

    @property
    def params(self) -> ArrayView:
        """Every trainable array below this module, by dotted name (the live arrays, read-only dict)."""
        return ArrayView({f"{prefix}{name}": value for prefix, module in self.named_modules()
                          for name, value in module._params.items()}, "params")

    @property
    def grads(self) -> ArrayView:
        """The gradient array of every entry of ``params``, same keys, same shapes (live arrays)."""
        return ArrayView({f"{prefix}{name}": value for prefix, module in self.named_modules()
                          for name, value in module._grads.items()}, "grads")

    def n_params(self) -> int:
        """Number of trainable scalars."""
        return sum(value.size for value in self.params.values())

    def zero_grad(self) -> None:
        """Set every gradient below this module to 0, in place."""
        for module in self.modules():
            for grad in module._grads.values():
                grad.fill(0.0)

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

    # -- the computation ----------------------------------------------------------------------
    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout, input_grad: bool = True):  # pragma: no cover - abstract
        raise NotImplementedError

    def __getattr__(self, name: str):
        # Called only when ordinary lookup fails: most often a backward reading what its forward
        # keeps (``self.x``) before any forward ran. Say so instead of a bare "no attribute".
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}; if its forward keeps "
                             f"{name!r} for backward, call forward before backward")

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
