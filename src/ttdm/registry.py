"""Name → object registries for datasets, models, samplers, metrics and methods.

A component is added by adding a file to its package and decorating it with ``@REGISTRY.register("name")``;
:func:`Registry.load` imports every module of the package, so no other file needs editing.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any


class Registry:
    """A mapping from names to components of one kind, filled by modules of one package.

    Args:
        kind: what is registered, used in error messages ("dataset", "model", ...).
        package: dotted name of the package whose modules register into this registry.
    """

    def __init__(self, kind: str, package: str) -> None:
        self.kind = kind
        self.package = package
        self._items: dict[str, Any] = {}
        self._options: dict[str, type | None] = {}
        self._loaded = False

    def register(self, name: str, *, options: type | None = None) -> Callable[[Any], Any]:
        """Decorator that registers ``obj`` under ``name``; a name may be registered once.

        ``options`` is the component's options dataclass (``ttdm.options``); a class registered without it may
        carry it as its ``Options`` attribute.
        """

        def decorator(obj: Any) -> Any:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            self._options[name] = options if options is not None else getattr(obj, "Options", None)
            return obj

        return decorator

    def options(self, name: str) -> type | None:
        """The options dataclass declared by component ``name`` (None when it declares none)."""
        self.get(name)
        return self._options.get(name)

    def load(self) -> "Registry":
        """Import every module of ``self.package`` so that their ``register`` calls run."""
        if not self._loaded:
            pkg = importlib.import_module(self.package)
            for info in pkgutil.iter_modules(getattr(pkg, "__path__", [])):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{self.package}.{info.name}")
            self._loaded = True
        return self

    def names(self) -> list[str]:
        """Sorted registered names."""
        return sorted(self.load()._items)

    def get(self, name: str) -> Any:
        """The component registered as ``name``; a ValueError names the allowed values otherwise."""
        self.load()
        if name not in self._items:
            raise ValueError(f"unknown {self.kind} {name!r}; allowed: {', '.join(self.names())}")
        return self._items[name]

    def __contains__(self, name: str) -> bool:
        return name in self.load()._items
