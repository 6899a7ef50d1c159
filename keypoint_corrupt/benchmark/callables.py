"""Import and build a user's predict callable from ``MODULE:NAME`` or ``path/to/file.py:NAME``.

``NAME`` may be the predict callable itself (a function or a callable instance), a class, or a
factory (a function that returns the predict callable):

- a **class** is instantiated once, with the keyword arguments given (``--predict-arg``);
- ``NAME()`` (with the parentheses) or any keyword argument marks a **factory**: it is called
  once with them and must return a callable;
- otherwise a callable ``NAME`` **is** the predict callable.

While the module is imported and the callable built, the folder of ``path/to/file.py`` (for
``MODULE:NAME``, the current directory) is first on ``sys.path``, so the file can import its
sibling modules; the entry is removed again afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["CallableLoadError", "load_callable", "parse_predict_args"]


class CallableLoadError(Exception):
    """The predict callable could not be loaded or built; the message is one line.

    When the user's own code raised (an import inside the file, a constructor), that
    exception is the ``__cause__``.
    """


def parse_predict_args(items: Sequence[str] | None) -> dict[str, Any]:
    r"""``["key=value", ...]`` as keyword arguments; a value is JSON when it parses, else a string.

    Examples
    --------
    >>> parse_predict_args(["size=256", "name=dense", "scales=[1, 2]", "half=true", r'tag="7"'])
    {'size': 256, 'name': 'dense', 'scales': [1, 2], 'half': True, 'tag': '7'}
    """
    kwargs: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise CallableLoadError(f"expected KEY=VALUE with KEY a Python name, got {item!r}")
        if key in kwargs:
            raise CallableLoadError(f"{key} given twice")
        try:
            kwargs[key] = json.loads(text)
        except ValueError:
            kwargs[key] = text
    return kwargs


def load_callable(spec: str, kwargs: Mapping[str, Any] | None = None) -> Callable[..., Any]:
    """Import ``MODULE:NAME`` (or ``path/to/file.py:NAME``) and return the predict callable.

    A class is instantiated with ``kwargs``; ``NAME()`` or non-empty ``kwargs`` call a factory
    once; otherwise a callable ``NAME`` is returned as it is (see the module docstring).
    Raises :class:`CallableLoadError` with a one-line message.

    Examples
    --------
    >>> import numpy as np
    >>> load_callable("numpy:zeros") is np.zeros
    True
    >>> load_callable("collections:Counter", {"a": 2})  # a class whose instances are not callable
    Traceback (most recent call last):
    ...
    keypoint_corrupt.benchmark.callables.CallableLoadError: collections:Counter(a=2) returned a Counter...
    """
    source, sep, attr = spec.rpartition(":")
    factory = attr.endswith("()")
    attr = attr.removesuffix("()")
    if not sep or not source or not attr:
        raise CallableLoadError(f"expected MODULE:NAME or path/file.py:NAME, got {spec!r}")
    kwargs = dict(kwargs or {})
    is_file = source.endswith(".py") or os.sep in source or "/" in source
    folder = str(Path(source).resolve().parent) if is_file else os.getcwd()
    with _first_on_path(folder):
        module = _import_file(Path(source)) if is_file else _import_module(source)
        obj = _attribute(module, source, attr)
        return _build(obj, f"{source}:{attr}", factory or bool(kwargs), kwargs)


@contextlib.contextmanager
def _first_on_path(folder: str) -> Iterator[None]:
    """``folder`` first on ``sys.path`` for the block, then removed (if it was not there before)."""
    if folder in sys.path:
        yield
        return
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


def _user_error(what: str, exc: BaseException) -> CallableLoadError:
    err = CallableLoadError(f"{what} raised {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise CallableLoadError(f"file not found: {path}")
    name = path.stem
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path.resolve()):
        return loaded  # the same file, already imported (--predict and --compare-predict)
    if not name.isidentifier() or loaded is not None:  # never shadow another module
        name = f"_keypoint_corrupt_user_{abs(hash(str(path.resolve()))):x}"
    spec = importlib.util.spec_from_file_location(name, path.resolve())
    if spec is None or spec.loader is None:
        raise CallableLoadError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses, pickling and typing look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise _user_error(f"importing {path}", exc) from exc
    return module


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            err = CallableLoadError(f"No module named {exc.name!r} (in the current directory or installed)")
            err.__cause__ = exc
            raise err from exc
        raise _user_error(f"importing {name}", exc) from exc
    except Exception as exc:
        raise _user_error(f"importing {name}", exc) from exc


def _attribute(module: ModuleType, source: str, attr: str) -> Any:
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CallableLoadError(f"{source} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _build(obj: Any, name: str, factory: bool, kwargs: dict[str, Any]) -> Callable[..., Any]:
    if not callable(obj):
        raise CallableLoadError(
            f"{name} is {_a(type(obj).__name__)}, not a function, a callable object, a class or a factory"
        )
    if not (inspect.isclass(obj) or factory):
        return obj
    call = f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    try:
        built = obj(**kwargs)
    except Exception as exc:
        raise _user_error(call, exc) from exc
    if not callable(built):
        raise CallableLoadError(
            f"{call} returned {_a(type(built).__name__)}, which is not callable: "
            "define __call__(self, images[, crops])"
        )
    return built


def _a(word: str) -> str:
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"
