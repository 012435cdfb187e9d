"""The Module base class: named parameters, gradients that accumulate, children found by recursion.

A module owns a few trainable arrays (``self._params``), a gradient array of the same shape for each
(``self._grads``), and named children. ``params`` and ``grads`` present the module's own arrays and
every descendant's under dotted names (``experts.W0``, ``gates.1.W``, ``towers.0.layers.2.b``).
They are the live arrays, not copies: an optimizer that updates ``model.params["experts.W0"]`` in
place updates the expert, and a gradient check that nudges it changes what ``forward`` computes.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class Module:
    """Base class for every building block and model.

    Subclasses register arrays with ``add_param`` and sub-modules with ``add_child``, and implement
    ``forward(x)`` (keeping what backward needs) and ``backward(dout)`` (returning d loss / d input
    and ADDING parameter gradients into ``self._grads``, never overwriting: a module used twice or
    fed from two places gets the sum of both contributions). ``backward(dout, input_grad=False)``
    may skip the input gradient and return None: training never needs d loss / d X, and for the
    first layer of a model it is a whole matrix product.
    """

    def __init__(self) -> None:
        self._params: dict[str, np.ndarray] = {}
        self._grads: dict[str, np.ndarray] = {}
        self._children: dict[str, Module] = {}

    # -- registration -------------------------------------------------------------------------
    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        if "." in name or name in self._params or name in self._children:
            raise ValueError(f"parameter name {name!r} is dotted or already used in {type(self).__name__}")
        self._params[name] = value
        self._grads[name] = np.zeros_like(value)
        return value

    def add_child(self, name: str, module: Module) -> Module:
        if not isinstance(module, Module):
            raise TypeError(f"child {name!r} must be a Module, got {type(module).__name__}")
        if "." in name or name in self._params or name in self._children:
            raise ValueError(f"child name {name!r} is dotted or already used in {type(self).__name__}")
        self._children[name] = module
        return module

    # -- the flat, dotted view ----------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Yield (dotted name, module) for this module and every descendant, depth first."""
        yield prefix, self
        for name, child in self._children.items():
            yield from child.named_modules(f"{prefix}{name}.")

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

    def zero_grad(self) -> None:
        for _, module in self.named_modules():
            for grad in module._grads.values():
                grad.fill(0.0)

    def pack(self) -> tuple[np.ndarray, np.ndarray]:
        """Move every parameter (and gradient) below this module into one contiguous 1-D buffer.

        Each module's arrays become views of the buffers, so ``params`` and ``grads`` still present
        live arrays of the same shapes and values. An element-wise optimizer (SGD, Adam) can then
        update the whole model in a handful of NumPy calls instead of a handful per array, and
        ``zero_grad`` is one ``fill``. Returns (parameter buffer, gradient buffer).
        """
        owners = [(module, name) for _, module in self.named_modules() for name in module._params]
        dtypes = {module._params[name].dtype for module, name in owners}
        if len(dtypes) != 1:
            raise TypeError(f"pack needs one dtype for every parameter, found {sorted(map(str, dtypes))}")
        sizes = [module._params[name].size for module, name in owners]
        flat_params = np.empty(sum(sizes), dtype=dtypes.pop())
        flat_grads = np.zeros_like(flat_params)
        offset = 0
        for (module, name), size in zip(owners, sizes):
            shape = module._params[name].shape
            view = flat_params[offset:offset + size].reshape(shape)    # reshape of a slice: a view
            view[...] = module._params[name]
            module._params[name] = view
            module._grads[name] = flat_grads[offset:offset + size].reshape(shape)
            offset += size
        self.flat_params, self.flat_grads = flat_params, flat_grads
        return flat_params, flat_grads

    def n_params(self) -> int:
        """Number of trainable scalars."""
        return sum(value.size for value in self.params.values())

    # -- the computation ----------------------------------------------------------------------
    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout, input_grad: bool = True):  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self._params.items())
        return f"{type(self).__name__}({shapes})"


class ModuleList(Module):
    """Children kept in a list and named ``0``, ``1``, ... (one tower or gate per task, say)."""

    def __init__(self, modules: list[Module]) -> None:
        super().__init__()
        self.modules = list(modules)
        for index, module in enumerate(self.modules):
            self.add_child(str(index), module)

    def __len__(self) -> int:
        return len(self.modules)

    def __getitem__(self, index: int) -> Module:
        return self.modules[index]

    def __iter__(self) -> Iterator[Module]:
        return iter(self.modules)


class Sequential(ModuleList):
    """Children applied in order, so parameters read ``layers.2.W``."""

    def forward(self, x):
        for module in self.modules:
            x = module.forward(x)
        return x

    def backward(self, dout, input_grad: bool = True):
        for index in reversed(range(len(self.modules))):
            # Only the first module's input is this sequence's input.
            dout = self.modules[index].backward(dout, input_grad=input_grad or index > 0)
        return dout
