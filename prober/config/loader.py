"""Loading check definitions: YAML files and directories, `${VAR}` interpolation, defaults, validation.

The loader reports every problem at once, each on one line naming the file, the check and the field and
saying what was expected, because a user fixing a config wants the whole list, not one error per try.
It never touches the network and never runs a probe.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prober.config.conditions import CompiledCondition, compile_conditions
from prober.config.maintenance import name_matches
from prober.config.models import (
    Announcement,
    CheckBase,
    HeartbeatConfig,
    IngestConfig,
    MaintenanceWindow,
    NotifierConfig,
    RetentionConfig,
    StatusPageConfig,
    TelemetryConfig,
)
from prober.config.schedules import Schedule
from prober.config.yaml_reader import MAX_CHARACTERS, YamlProblem, read_yaml
from prober.probes import PROBES, Probe

__all__ = ["CheckSpec", "Config", "ConfigError", "Problem", "collect_files", "load_config"]

TOP_LEVEL_KEYS = (
    "version",
    "defaults",
    "notifiers",
    "maintenance",
    "checks",
    "ingest",
    "retention",
    "status_page",
    "announcements",
    "telemetry",
    "heartbeat",
)
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation problem, printed as one line."""

    file: str
    message: str
    check: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.check is not None:
            parts.append(f"check {self.check!r}")
        if self.field:
            parts.append(f"field {self.field!r}")
        return ": ".join([*parts, self.message])


class ConfigError(Exception):
    """The definitions are invalid; `problems` holds every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A validated check, ready to run: its model, its probe and its compiled conditions."""

    model: CheckBase
    probe: Probe[Any]
    conditions: tuple[CompiledCondition, ...]
    source: str

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def type(self) -> str:
        return self.model.type

    @property
    def run_schedule(self) -> Schedule:
        """When the scheduler runs the check: its `schedule`, unless its type is passive (a heartbeat, whose
        `schedule` says when pings are due) and declares its own (prober.probes.registry.PassiveProbe)."""
        own = getattr(self.probe, "run_schedule", None)
        return self.model.schedule if own is None else own(self.model)


@dataclass(slots=True)
class Config:
    checks: list[CheckSpec] = field(default_factory=list)
    notifiers: dict[str, NotifierConfig] = field(default_factory=dict)
    maintenance: list[MaintenanceWindow] = field(default_factory=list)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    status_page: StatusPageConfig = field(default_factory=StatusPageConfig)
    announcements: list[Announcement] = field(default_factory=list)
    telemetry: TelemetryConfig | None = None
    heartbeat: HeartbeatConfig | None = None
    files: list[str] = field(default_factory=list)

    def select(self, *, names: Iterable[str] = (), location: str | None = None) -> list[CheckSpec]:
        """Checks matching any of the name globs (all if none) and, if given, run at `location`."""
        patterns = list(names)
        return [
            spec
            for spec in self.checks
            if (not patterns or name_matches(spec.name, patterns))
            and (location is None or location in spec.model.locations)
        ]


def collect_files(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], list[Problem]]:
    """Expand files and directories (every *.yaml / *.yml below, sorted)."""
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                problems.append(Problem(str(path), "no *.yaml or *.yml files in this directory"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), "no such file or directory"))
    # A file named twice (`checks/ checks/api.yaml`) is read once, not reported as duplicating itself.
    unique: dict[Path, Path] = {}
    for file in files:
        unique.setdefault(file.resolve(), file)
    return list(unique.values()), problems


class _Interpolation:
    """`${VAR}` and `$$` replaced in every string of a document, with what it costs bounded.

    A string named by many aliases is one object; it is interpolated once and the result shared by every
    use (a 1 MB anchored string holding `$$`, named 1,000 times, used to become 1,000 copies: 1 GB).
    The characters of new strings are counted: more than MAX_CHARACTERS (a variable of 1 MB named in many
    different strings) stops with a sentence instead of filling memory.
    """

    def __init__(self, env: Mapping[str, str], unset: list[tuple[tuple[Any, ...], str]]) -> None:
        self.env = env
        self.unset = unset
        self.done: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.built = 0

    def string(self, value: str, where: tuple[Any, ...]) -> str:
        if "$" not in value:
            return value
        found = self.done.get(value)
        if found is None:
            missing: list[str] = []

            def replace(match: re.Match[str]) -> str:
                if match.group(0) == "$$":
                    return "$"
                name, default = match.group(1), match.group(2)
                if name in self.env:
                    return self.env[name]
                if default is not None:
                    return default
                missing.append(name)
                return ""

            result = _VAR.sub(replace, value)
            self.built += len(result)
            if self.built > MAX_CHARACTERS:
                raise YamlProblem(
                    f"with its ${{VAR}}s replaced, the file holds more than {MAX_CHARACTERS:,} characters"
                    f" (at {_dotted(where) or 'the top'}); use shorter variables or fewer of them"
                )
            found = self.done[value] = (result, tuple(missing))
        self.unset.extend((where, name) for name in found[1])
        return found[0]

    def value(self, value: Any, where: tuple[Any, ...]) -> Any:
        if isinstance(value, str):
            return self.string(value, where)
        if isinstance(value, dict):
            return {key: self.value(item, (*where, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item, (*where, index)) for index, item in enumerate(value)]
        return value


def _interpolate(
    value: Any, env: Mapping[str, str], where: tuple[Any, ...], unset: list[tuple[tuple[Any, ...], str]]
) -> Any:
    """`value` with `${VAR}` and `$$` replaced; raises YamlProblem past MAX_CHARACTERS of new text."""
    return _Interpolation(env, unset).value(value, where)


def _dotted(loc: Iterable[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _keys(model: Any) -> list[str]:
    """The keys a model accepts as written in YAML (a field's alias, like `json`, else its name)."""
    return [info.alias or name for name, info in getattr(model, "model_fields", {}).items()]


def _all_check_keys() -> set[str]:
    """Every key some check type accepts."""
    return {name for probe in PROBES.values() for name in _keys(probe.Config)}


def _pydantic_problems(
    exc: ValidationError, file: str, check: str | None, model: type[Any], prefix: str = ""
) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        field_name = (prefix + _dotted(loc)).rstrip(".")  # a model-level error: the model's own path
        kind = error["type"]
        if kind == "extra_forbidden":
            owner = model
            for part in loc[:-1]:
                annotation = getattr(owner, "model_fields", {}).get(part)
                inner = getattr(annotation, "annotation", None)
                owner = inner if isinstance(inner, type) else owner
            valid = ", ".join(sorted(_keys(owner)))
            message = f"unknown key {loc[-1]!r}; valid keys: {valid}"
        elif kind == "missing":
            message = "required key is missing"
        else:
            message = error["msg"].removeprefix("Value error, ")
            if kind not in ("value_error", "assertion_error"):
                message += f", got {error.get('input')!r}"
        problems.append(Problem(file, message, check, field_name or None))
    return problems


def _merge_defaults(defaults: Mapping[str, Any], check: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    known = set(fields)
    for key, value in defaults.items():
        if key in known and key not in ("name", "type"):
            merged[key] = value
    for key, value in check.items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict):
            merged[key] = {**base, **value}
        else:
            merged[key] = value
    return merged


class _Loader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[Problem] = []
        self.config = Config()
        self.seen: dict[str, str] = {}

    def load_file(self, path: Path) -> None:
        file = str(path)
        self.config.files.append(file)
        try:
            document = read_yaml(path)
        except YamlProblem as exc:
            self.problems.append(Problem(file, exc.message))
            return
        if document is None:
            return
        if not isinstance(document, dict):
            self.problems.append(
                Problem(file, f"expected a mapping with 'checks:' at the top, got {type(document).__name__}")
            )
            return
        raw_checks = document.get("checks")
        unset: list[tuple[tuple[Any, ...], str]] = []
        try:
            document = _interpolate(document, self.env, (), unset)
        except YamlProblem as exc:
            self.problems.append(Problem(file, exc.message))
            return
        # Fields left empty by an unset variable: their own validation errors would only repeat the problem.
        unset_fields: dict[int, set[str]] = {}
        unset_defaults: set[str] = set()
        for location, name in unset:
            spot: tuple[Any, ...] = location
            check_name = None
            if len(spot) >= 2 and spot[0] == "checks" and isinstance(raw_checks, list):
                item = raw_checks[spot[1]] if spot[1] < len(raw_checks) else None
                check_name = str(item.get("name")) if isinstance(item, dict) and item.get("name") else f"#{spot[1] + 1}"
                unset_fields.setdefault(spot[1], set()).add(_dotted(spot[2:]))
                spot = spot[2:]
            elif len(spot) >= 2 and spot[0] == "defaults":
                unset_defaults.add(_dotted(spot[1:]))
            self.problems.append(
                Problem(
                    file,
                    f"environment variable ${{{name}}} is not set (set it, or write ${{{name}:-default}})",
                    check_name,
                    _dotted(spot) or None,
                )
            )
        for key in document:
            if key not in TOP_LEVEL_KEYS:
                self.problems.append(
                    Problem(file, f"unknown top-level key {key!r}; valid keys: {', '.join(TOP_LEVEL_KEYS)}")
                )
        version = document.get("version", 1)
        if version != 1:
            self.problems.append(
                Problem(file, f"unsupported version {version!r}; this prober reads version 1", field="version")
            )
        self._load_sections(file, document)
        defaults = document.get("defaults") or {}
        if not isinstance(defaults, dict):
            self.problems.append(Problem(file, "expected a mapping", field="defaults"))
            defaults = {}
        else:
            # The keys every type shares answer most defaults; only another key needs every type's model
            # (which imports every probe module: Playwright, PyAV...).
            shared = set(_keys(CheckBase))
            known = shared if "name" not in defaults and shared.issuperset(defaults) else _all_check_keys()
            for key in defaults:
                if key not in known or key == "name":  # a name in defaults would be silently dropped
                    self.problems.append(
                        Problem(
                            file,
                            f"unknown key {key!r} in defaults; valid keys: {', '.join(sorted(known - {'name'}))}",
                            field=f"defaults.{key}",
                        )
                    )
        checks = document.get("checks") or []
        if not isinstance(checks, list):
            self.problems.append(Problem(file, "expected a list of checks", field="checks"))
            return
        for index, raw in enumerate(checks):
            self._load_check(file, index, raw, defaults, unset_fields.get(index, set()) | unset_defaults)

    def _load_sections(self, file: str, document: Mapping[str, Any]) -> None:
        notifiers = document.get("notifiers") or {}
        if not isinstance(notifiers, dict):
            self.problems.append(
                Problem(file, "expected a mapping of notifier names to {urls: [...]}", field="notifiers")
            )
        else:
            for name, raw in notifiers.items():
                if name in self.config.notifiers:
                    self.problems.append(
                        Problem(file, f"notifier {name!r} is defined twice", field=f"notifiers.{name}")
                    )
                    continue
                try:
                    self.config.notifiers[name] = NotifierConfig.model_validate(raw)
                except ValidationError as exc:
                    self.problems.extend(_pydantic_problems(exc, file, None, NotifierConfig, f"notifiers.{name}."))
        windows = document.get("maintenance") or []
        if not isinstance(windows, list):
            self.problems.append(Problem(file, "expected a list of maintenance windows", field="maintenance"))
            windows = []
        for index, raw in enumerate(windows):
            try:
                self.config.maintenance.append(MaintenanceWindow.model_validate(raw))
            except ValidationError as exc:
                self.problems.extend(_pydantic_problems(exc, file, None, MaintenanceWindow, f"maintenance[{index}]."))
        self._load_announcements(file, document.get("announcements"))
        sections: tuple[tuple[str, type[Any]], ...] = (
            ("retention", RetentionConfig),
            ("ingest", IngestConfig),
            ("status_page", StatusPageConfig),
            ("telemetry", TelemetryConfig),
            ("heartbeat", HeartbeatConfig),
        )
        for key, model in sections:
            if document.get(key) is None:
                continue
            try:
                setattr(self.config, key, model.model_validate(document[key]))
            except ValidationError as exc:
                self.problems.extend(_pydantic_problems(exc, file, None, model, f"{key}."))

    def _load_announcements(self, file: str, raw: Any) -> None:
        if raw is None:
            return
        if not isinstance(raw, list):
            self.problems.append(Problem(file, "expected a list of announcements", field="announcements"))
            return
        for index, item in enumerate(raw):
            try:
                self.config.announcements.append(Announcement.model_validate(item))
            except ValidationError as exc:
                self.problems.extend(_pydantic_problems(exc, file, None, Announcement, f"announcements[{index}]."))

    def _load_check(
        self, file: str, index: int, raw: Any, defaults: Mapping[str, Any], unset: Set[str] = frozenset()
    ) -> None:
        label = f"#{index + 1}"
        if not isinstance(raw, dict):
            self.problems.append(Problem(file, f"expected a mapping with name and type, got {raw!r}", label))
            return
        name = raw.get("name")
        label = str(name) if name else label
        # Claim the name before validating, so a duplicate is reported even when either copy has errors.
        duplicate_of = self.seen.get(name) if isinstance(name, str) else None
        if duplicate_of is not None:
            self.problems.append(
                Problem(file, f"duplicate check name; it is already defined in {duplicate_of}", label, "name")
            )
        elif isinstance(name, str) and name:
            self.seen[name] = file
        type_name = raw.get("type", defaults.get("type"))
        if not isinstance(type_name, str) or type_name not in PROBES:
            valid = ", ".join(sorted(PROBES))
            message = "required key is missing" if type_name is None else f"unknown check type {type_name!r}"
            self.problems.append(Problem(file, f"{message}; valid types: {valid}", label, "type"))
            return
        probe = PROBES[type_name]
        merged = _merge_defaults(defaults, {**raw, "type": type_name}, _keys(probe.Config))
        try:
            model = probe.Config.model_validate(merged)
        except ValidationError as exc:
            problems = _pydantic_problems(exc, file, label, probe.Config)
            self.problems.extend(problem for problem in problems if problem.field not in unset)
            return
        conditions, errors = compile_conditions(model.expect, model.warn, probe.metrics, probe.default_expect(model))
        for field_name, message in errors:
            self.problems.append(Problem(file, message, label, field_name))
        if not errors and duplicate_of is None:
            self.config.checks.append(CheckSpec(model, probe, tuple(conditions), file))

    def finish(self) -> None:
        for spec in self.config.checks:
            for index, name in enumerate(spec.model.alert.notify):
                if name not in self.config.notifiers:
                    valid = ", ".join(sorted(self.config.notifiers)) or "none are defined"
                    self.problems.append(
                        Problem(
                            spec.source,
                            f"unknown notifier {name!r}; defined notifiers: {valid}",
                            spec.name,
                            f"alert.notify[{index}]",
                        )
                    )


def load_config(paths: Sequence[str | os.PathLike[str]], env: Mapping[str, str] | None = None) -> Config:
    """Load and validate every definition under `paths`; raise ConfigError listing every problem."""
    files, problems = collect_files(paths)
    loader = _Loader(os.environ if env is None else env)
    loader.problems.extend(problems)
    for path in files:
        try:
            loader.load_file(path)
        except Exception as exc:  # a bug must still be a problem line (exit 2), never a crashed reload
            loader.problems.append(
                Problem(str(path), f"could not be validated: {type(exc).__name__}: {exc} (this is a bug in prober)")
            )
    loader.finish()
    if loader.problems:
        raise ConfigError(loader.problems)
    return loader.config
