"""Imports put off until first use, so that reading a lab's name, config and presets
(`keras-labs list`, `--help`, config errors) does not load TensorFlow (seconds) or sklearn.

A lab module keeps its whole story in one file and names its heavy dependencies with
`lazy_import`; the `data` and `models` packages resolve their names with `lazy_attributes`.
tests/test_cli.py checks that listing and config errors leave TensorFlow unimported.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable


class LazyModule(types.ModuleType):
    """Stands in for module `__name__`, which is imported at the first attribute access.

    Reads, writes and deletions go through to the real module and nothing is copied, so a
    monkeypatch on either object is seen through both.
    """

    def __getattr__(self, name: str):
        # Only reached for names the stand-in lacks: all but __name__, __doc__ and the like.
        return getattr(self._real_module(), name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self._real_module(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._real_module(), name)

    def __dir__(self) -> list[str]:
        return dir(self._real_module())

    def __repr__(self) -> str:
        return f"<lazy module {self.__name__!r}>"

    def _real_module(self) -> types.ModuleType:
        return importlib.import_module(self.__name__)


def lazy_import(*names: str):
    """Stand-ins for the modules `names` (dotted), each imported when first used.

    Returns:
        One `LazyModule` for one name, else a tuple of them in order.
    """
    modules = tuple(LazyModule(name) for name in names)
    return modules[0] if len(modules) == 1 else modules


def lazy_attributes(package: str, sources: dict[str, tuple[str, ...]]
                    ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A package's `__getattr__` and `__dir__` (PEP 562) for names defined in its submodules.

    Args:
        package: The package's `__name__`.
        sources: {submodule: the names the package takes from it}; a submodule's own name
            also resolves (`models.cnn`).

    Returns:
        (`__getattr__`, `__dir__`): assign both at the package's top level.
    """
    where = {name: module for module, names in sources.items() for name in names}
    namespace = vars(importlib.import_module(package))

    def __getattr__(name: str):  # noqa: N807 (the module hook's own name)
        if name in sources:
            return importlib.import_module(f"{package}.{name}")
        if name in where:
            return getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:  # noqa: N807
        return sorted({*namespace, *where, *sources})

    return __getattr__, __dir__
