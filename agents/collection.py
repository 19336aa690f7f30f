"""The worker's collection: only the test files of the units it is handed, as they arrive.

Registered by agents/plugin.py in every pytest worker. pytest still runs its own collection at
start-up over the user's arguments (directories walked, conftest.py files loaded, ignore rules
and `python_files` applied: all of it cheap), but every test *file* it finds is deferred: its
collector is kept and reported as collected with nothing in it, so no test module is imported
and the worker is ready at once. When a `run` arrives, `collect(node_ids)` collects the files
of the node ids not seen before, each once, with `Session.genitems` on the very collector pytest
built at start-up: every item of a file hangs off one Module (and Class) node under one
Dir/Package chain, so pytest's SetupState and fixture registry see one consistent tree, and
module- and class-scoped fixtures are set up once however many `run`s bring a file's tests. The
new items then go through `pytest_collection_modifyitems` (`-k`, `-m`, `--deselect`), as at
start-up. A file is never collected twice: re-collecting would make new Module/Class nodes, and
fixtures would be torn down and set up again.

When lazy is not safe, the worker collects the whole suite at start-up, as before. The mode
comes from ORCHESTRATE_COLLECT (`auto`, the default; `lazy`; `full`), which local agents'
workers inherit from the coordinator's environment:

- `full`: today's behaviour.
- `auto`: full collection when any plugin that is neither pytest's own nor orchestrate's (a
  conftest.py, an installed plugin, `-p`) implements a hook that takes part in *making* the
  collection (`COLLECTION_MAKING_HOOKS`: `pytest_collection`, `pytest_make_collect_report`),
  which may build other nodes than pytest's own walk. Hooks that only *see* items
  (`pytest_collection_modifyitems`, `pytest_collection_finish`, `pytest_itemcollected`,
  `pytest_deselected`; most suites and plugins have one, anyio's `pytest_collection_finish`
  is installed almost everywhere) keep the worker lazy: they see each `run`'s new items. That
  is safe because the coordinator's collection alone decides what runs: a worker runs only the
  node ids it is given, and one whose hooks left a given node id out (a modifyitems that picks
  by what else was collected) reports it as not collected, shown with both sides, never
  silently. Decided after the start-up walk, when every conftest.py is loaded.
- `lazy`: lazy even with collection-making hooks.

Either lazy mode still collects everything at start-up when an argument names tests inside a
file (`path.py::name`): pytest resolves such an argument by collecting the file.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterable, Mapping

import pytest
from _pytest.runner import collect_one_node

__all__ = ["MODES", "MODE_ENV", "WorkerCollection", "collect_mode", "file_node_id", "user_collection_hooks"]

MODE_ENV = "ORCHESTRATE_COLLECT"
MODES = ("auto", "lazy", "full")
# Hooks that take part in making the collection: a plugin of the user's implementing one of them
# makes `auto` collect everything (hooks that only see items do not: see the module docstring).
COLLECTION_MAKING_HOOKS = ("pytest_collection", "pytest_make_collect_report")
# Modules whose hook implementations are known to be per item, or ours.
_OWN_MODULE_PREFIXES = ("_pytest.", "agents.", "orchestrator.")


def collect_mode(environ: Mapping[str, str] = os.environ) -> str:
    """The mode asked for in ORCHESTRATE_COLLECT (`auto` when unset); a bad value raises UsageError."""
    mode = environ.get(MODE_ENV, "").strip().lower() or "auto"
    if mode not in MODES:
        raise pytest.UsageError(f"{MODE_ENV}={mode!r}: expected one of {', '.join(MODES)}")
    return mode


def user_collection_hooks(pluginmanager: pytest.PytestPluginManager) -> list[str]:
    """'where implements hook' for every non-builtin implementation of a collection-making hook."""
    found: list[str] = []
    for name in COLLECTION_MAKING_HOOKS:
        for impl in getattr(pluginmanager.hook, name).get_hookimpls():
            module = getattr(impl.function, "__module__", None) or ""
            if module == "pytest" or module.startswith(_OWN_MODULE_PREFIXES):
                continue
            found.append(f"{_describe_plugin(pluginmanager, impl.plugin, module)} implements {name}")
    return found


def _describe_plugin(pluginmanager: pytest.PytestPluginManager, plugin: object, module: str) -> str:
    path = getattr(plugin, "__file__", None)
    if path:
        try:
            return os.path.relpath(path)
        except ValueError:  # another drive (Windows)
            return str(path)
    return f"plugin {pluginmanager.get_name(plugin) or module}"


class WorkerCollection:
    """What this worker collected, and the test files it has not collected yet.

    Registered as a pytest plugin before the session starts; the worker's plugin asks it for
    the items of every `run` (`collect`) and tells the agent the mode (`lazy`, `fallback`).
    """

    def __init__(self, config: pytest.Config, mode: str) -> None:
        self.config = config
        self.mode = mode
        # Whether files are collected as units arrive; why not, when lazy was asked for.
        self.lazy = mode != "full"
        self.fallback = ""
        self._deferring = False
        # Test files found at start-up and not collected yet: file node id -> its collectors
        # (two for one path with --doctest-modules), in pytest's order.
        self._deferred: dict[str, list[pytest.Collector]] = {}
        # While a `run` is being collected lazily: the top-level classes it names. Every other
        # class of a file collected then is deferred too, so a worker builds the items of the
        # classes it runs, not of every class in the files it touches.
        self._wanted_classes: set[str] | None = None
        self.items: dict[str, pytest.Item] = {}

    # -- start-up: pytest's own collection, test files deferred --------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        """Before pytest's collection: defer test files unless an argument names tests in one."""
        if not self.lazy:
            return
        named = [arg for arg in self.config.args if "::" in arg]
        if named:
            self._fall_back(f"an argument names tests inside a file ({named[0]})")
            return
        self._deferring = True

    @pytest.hookimpl(tryfirst=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> pytest.CollectReport | None:
        """A test file found while deferring, or a class no unit asked for yet: kept, reported
        as collected with nothing in it, not imported (a file) or not expanded (a class)."""
        if not self._defers(collector):
            return None
        self._deferred.setdefault(collector.nodeid, []).append(collector)
        return pytest.CollectReport(collector.nodeid, "passed", None, [])

    def _defers(self, collector: pytest.Collector) -> bool:
        if self._deferring:
            return isinstance(collector, pytest.File)
        return (
            self._wanted_classes is not None
            and isinstance(collector, pytest.Class)
            and isinstance(collector.parent, pytest.Module)
            and collector.nodeid not in self._wanted_classes
        )

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> Generator[None, None, None]:
        """The start-up walk is over, every conftest.py loaded: stay lazy, or collect everything.

        Outermost wrapper, so the user's hooks (wrappers too) only see the suite once decided.
        """
        if self._deferring:
            self._deferring = False
            found = user_collection_hooks(config.pluginmanager) if self.mode == "auto" else []
            if found:
                self._fall_back("; ".join(found))
                deferred, self._deferred = self._deferred, {}
                items.extend(self._genitems(session, (c for cs in deferred.values() for c in cs)))
        result = yield
        self.items.update((item.nodeid, item) for item in items)
        return result

    def _fall_back(self, reason: str) -> None:
        self.lazy = False
        self.fallback = reason

    # -- as units arrive -----------------------------------------------------------------------

    def collect(self, session: pytest.Session, node_ids: Iterable[str]) -> None:
        """Collect the files of `node_ids` not collected yet; their items join `items`.

        Called by the worker's plugin, on pytest's main thread, for every `run` command.
        """
        node_ids = list(node_ids)
        files = dict.fromkeys(file_node_id(n) for n in node_ids)
        classes = dict.fromkeys(class_node_id(n) for n in node_ids)
        collectors = [c for key in (*files, *classes) for c in self._deferred.pop(key, ())]
        if not collectors:
            return
        self._wanted_classes = set(classes)
        try:
            new_items = list(self._genitems(session, collectors))
        finally:
            self._wanted_classes = None
        # -k, -m, --deselect apply as at start-up; the wrapper above records what is left.
        self.config.hook.pytest_collection_modifyitems(session=session, config=self.config, items=new_items)
        session.items.extend(new_items)
        session.testscollected += len(new_items)

    def collect_whole_files(self, session: pytest.Session, files: Iterable[str]) -> None:
        """Collect every class still deferred in `files` (to show what a worker has instead of
        node ids it was given that it does not find)."""
        prefixes = tuple(f"{f}::" for f in files)
        self.collect(session, [key for key in self._deferred if key.startswith(prefixes)])

    @staticmethod
    def _genitems(session: pytest.Session, collectors: Iterable[pytest.Collector]) -> Iterable[pytest.Item]:
        for collector in collectors:
            if isinstance(collector, pytest.Class):
                # A class deferred when its module was collected: pytest's genitems would take
                # the empty report it cached then for the real one, so this level is done here,
                # as genitems does it, and the class's children go through genitems.
                report = collect_one_node(collector)
                if report.passed:
                    for child in report.result:
                        yield from session.genitems(child)
                collector.ihook.pytest_collectreport(report=report)
            else:
                yield from session.genitems(collector)


def file_node_id(node_id: str) -> str:
    """The node id of the file a test's node id belongs to: its path part."""
    return node_id.split("::", 1)[0]


def class_node_id(node_id: str) -> str:
    """The node id of the outermost collector inside the file: a test class, or the test itself."""
    path, sep, rest = node_id.partition("::")
    if not sep:
        return node_id
    # The parameter id goes first (it may hold "::"), and only after the path: a path may hold "[".
    return f"{path}::{rest.split('[', 1)[0].split('::', 1)[0]}"
