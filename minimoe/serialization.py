"""Saving and loading models: one ``.npz`` file holding the architecture (JSON) and every
parameter by its dotted name. Writes are atomic (a temporary file in the same folder, then a
rename), and a load checks everything before it changes anything."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "minimoe-model"
VERSION = 2          # 2: parameters named by the mixture layer (levels.0.experts.shared.W0, ...)
_META_KEY = "__minimoe__"


def save_model(model, path) -> None:
    path = Path(path)
    meta = json.dumps({"format": FORMAT, "version": VERSION, "class": type(model).__name__,
                       "config": model.config})
    arrays = {name: value for name, value in model.params.items()}
    arrays[_META_KEY] = np.array(meta)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)     # atomic: readers see the old file or the new, never half
    except BaseException:
        os.unlink(temporary)
        raise


def _read(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) from a saved model, or ValueError saying why the file is not one."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"{path} is not a readable minimoe model file ({type(error).__name__}: {error})") from None
    if _META_KEY not in arrays:
        raise ValueError(f"{path} is not a minimoe model file (no {_META_KEY} entry)")
    try:
        meta = json.loads(str(arrays.pop(_META_KEY)))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} has a corrupt architecture record: {error}") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"{path} is format {meta.get('format')!r} version {meta.get('version')!r}; "
                         f"this minimoe reads {FORMAT!r} version {VERSION}")
    return meta, arrays


def _assign(model, arrays: dict[str, np.ndarray], path) -> None:
    params = model.params
    missing, unexpected = sorted(set(params) - set(arrays)), sorted(set(arrays) - set(params))
    if missing or unexpected:
        raise ValueError(f"{path} does not match the model's parameters: missing {missing}, unexpected {unexpected}")
    for name, value in arrays.items():
        if value.shape != params[name].shape:
            raise ValueError(f"{path}: parameter {name} has shape {value.shape}, "
                             f"the model expects {params[name].shape}")
        if not np.isfinite(value).all():
            raise ValueError(f"{path}: parameter {name} holds non-finite values")
    for name, value in arrays.items():      # only after every check passed: never half-loaded
        params[name][...] = value


def load(path):
    """Rebuild a model saved with ``model.save(path)``."""
    from .models import MODELS
    meta, arrays = _read(path)
    cls = MODELS.get(meta.get("class"))
    if cls is None:
        raise ValueError(f"{path} holds an unknown model class {meta.get('class')!r}; known: {sorted(MODELS)}")
    try:
        model = cls(**meta["config"])
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"{path} has an invalid architecture record: {error}") from None
    _assign(model, arrays, path)
    return model


def load_weights(model, path) -> None:
    """Load parameters into ``model``; the file's architecture must equal the model's."""
    meta, arrays = _read(path)
    saved_class, saved_config = meta.get("class"), meta.get("config") or {}
    config = json.loads(json.dumps(model.config))      # as it would read back from the file
    if saved_class != type(model).__name__ or saved_config != config:
        keys = sorted(set(saved_config) | set(config))
        differences = {key: (saved_config.get(key), config.get(key)) for key in keys
                       if saved_config.get(key) != config.get(key)}
        raise ValueError(f"{path} holds a {saved_class} of another architecture than this "
                         f"{type(model).__name__}; differing settings (file, model): {differences}")
    _assign(model, arrays, path)
