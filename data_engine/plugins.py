"""Registries of named plug-ins: each name a config key may take is owned by one registry.

A :class:`Registry` holds the built-in pieces of one kind (detectors, selection strategies,
embedders, model members, tasks), registered by the module that defines them, and finds a user's
pieces through a Python entry-point group (``importlib.metadata``, the standard plug-in
mechanism): a package that declares, in its ``pyproject.toml``,

    [project.entry-points."data_engine.detectors"]
    blurry = "my_package.detectors:BlurryDetector"

makes ``blurry`` a name ``[mining] detectors`` accepts once the package is installed. Entry-point
names are listed from the installed metadata without importing anything; a plug-in's module is
imported the first time its name is looked up.

This module sits in the bottom layer (it imports nothing of the engine but its errors): the stage
that owns a kind creates its registry, so the store never needs to know the names.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from data_engine.errors import ConfigError, EngineError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Named plug-ins of one kind: the built-ins, then the entry points of ``group``.

    A read-only mapping (``name in registry``, ``registry[name]``, iteration in registration
    order, built-ins first); :meth:`register` adds a built-in. ``name_attr``: the attribute a
    registered class carries its name in (e.g. ``issue_name``); an entry point's object must
    carry the entry point's name there, so that one name means one piece everywhere. ``base``:
    the class every plug-in must subclass (None: any callable).
    """

    def __init__(self, kind: str, group: str, *, name_attr: str | None = None, base: type | None = None) -> None:
        self.kind = kind
        self.group = group
        self.name_attr = name_attr
        self.base = base
        self._builtins: dict[str, T] = {}
        # The last read of the installed entry points: the sys.path it was read under, each entry with
        # its modification time (see _entry_points), and the entry points by name.
        self._read: tuple[list[str], tuple[tuple[str, int | None], ...], dict[str, EntryPoint]] | None = None

    def register(self, obj: T, name: str | None = None) -> T:
        """Add ``obj`` under ``name`` (default: its ``name_attr``); usable as a class decorator.

        Raises :class:`EngineError` when another object already holds the name.
        """
        key = name if name is not None else getattr(obj, self.name_attr or "__name__")
        if key in self._builtins and self._builtins[key] is not obj:
            raise EngineError(f"{self.kind} {key!r} is registered twice")
        self._builtins[key] = obj
        return obj

    def _entry_points(self, *, fresh: bool = False) -> dict[str, EntryPoint]:
        """The group's entry points by name (read from installed metadata; nothing is imported), for a
        listing of every name.

        Reading the metadata scans every installed distribution (about 20 ms on a loaded machine), so
        the last read is kept while ``sys.path`` and the modification time of each of its directories
        are unchanged: installing a package adds its ``.dist-info`` to a directory on ``sys.path``,
        which changes that directory's time, so a package installed while the process runs is listed
        by the next listing (a stat per ``sys.path`` entry, not a scan). ``fresh``: read regardless.

        Raises :class:`EngineError` when one takes a built-in's name: the config could not say which
        of the two it means, and ignoring the package's would drop it silently.
        """
        path = tuple((p, _mtime(p)) for p in sys.path)
        if not fresh and self._read is not None and self._read[1] == path:
            return self._read[2]
        found = {ep.name: ep for ep in entry_points(group=self.group)}
        for name in found.keys() & self._builtins.keys():
            raise EngineError(f"entry point {name!r} = {found[name].value!r} (group {self.group}) takes the name of "
                              f"a built-in {self.kind}; give it another name")
        self._read = (list(sys.path), path, found)
        return found

    def _entry_point(self, name: str) -> EntryPoint | None:
        """The entry point named ``name``, None if there is none (a built-in's name has none).

        A name the last read knows (a built-in, or one of its entry points) is answered from it while
        ``sys.path`` lists the same directories: a dict lookup, without the stat per ``sys.path``
        entry a listing makes. The stat was not free either way: with '' (the working directory) on
        ``sys.path``, every file the engine wrote there changed that directory's time, and the next
        lookup read every installed distribution again (~20 ms; the task plug-in is looked up per
        task in a push). A name the last read lacks is read afresh before it is called unknown, so a
        package installed while the process runs is found; the first lookup, and the first after
        ``sys.path`` changes, read too, so a package taking a built-in's name is refused. A package
        removed while the process runs keeps its name until ``sys.path`` changes (loading it then
        fails with an error naming the entry point).
        """
        last = self._read
        if last is not None and last[0] == sys.path and (name in self._builtins or name in last[2]):
            return last[2].get(name)
        return self._entry_points(fresh=True).get(name)

    def _load(self, ep: EntryPoint) -> T:
        """Import an entry point's object and check it is a piece of this kind."""
        where = f"entry point {ep.name!r} = {ep.value!r} (group {self.group})"
        try:
            obj = ep.load()
        except Exception as exc:  # a user's package failing to import: name it, keep the cause
            raise EngineError(f"{where}: cannot be loaded: {type(exc).__name__}: {exc}") from exc
        if self.base is not None and not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise EngineError(f"{where}: is not a subclass of {self.base.__module__}.{self.base.__qualname__}")
        if self.base is None and not callable(obj):
            raise EngineError(f"{where}: is not callable")
        if self.name_attr and getattr(obj, self.name_attr, None) != ep.name:
            raise EngineError(f"{where}: its {self.name_attr} is {getattr(obj, self.name_attr, None)!r}, "
                              f"not {ep.name!r}")
        return obj

    def __getitem__(self, name: str) -> T:
        if name in self._builtins:
            return self._builtins[name]
        ep = self._entry_point(name)
        if ep is None:
            raise KeyError(name)
        # Python keeps the imported module: loading again costs a dictionary lookup.
        return self._load(ep)

    def __contains__(self, name: object) -> bool:
        return name in self._builtins or (isinstance(name, str) and self._entry_point(name) is not None)

    def __iter__(self) -> Iterator[str]:
        # The last read while no directory on sys.path changed (a stat of each): a package installed
        # since is listed.
        yield from self._builtins
        yield from self._entry_points()

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def get_piece(self, name: str) -> T:
        """The piece named ``name``; raise :class:`EngineError` naming the known ones when unknown."""
        if name not in self:
            raise EngineError(f"unknown {self.kind} {name!r}; known: {', '.join(self)}")
        return self[name]

    def check(self, name: str, key: str) -> None:
        """Raise :class:`ConfigError` naming config ``key`` when ``name`` is not registered (nothing is
        loaded); :class:`EngineError` when an installed entry point takes a built-in's name."""
        if self._entry_point(name) is None and name not in self._builtins:
            raise ConfigError(f"{key} = {name!r}: unknown {self.kind}; known: {', '.join(self)} "
                              f"(a package adds one through the entry-point group {self.group!r})")



def _mtime(entry: str) -> int | None:
    """The modification time (ns) of the ``sys.path`` entry ``entry`` ('' is the working directory);
    None when it is missing or unreadable."""
    try:
        return os.stat(entry or ".").st_mtime_ns
    except OSError:
        return None
