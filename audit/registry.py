"""One registry for every kind of plugin: backends, scorers, renderers and suite methods.

Plugins are found through entry-point groups (`model_audit.backends`, `model_audit.scorers`,
`model_audit.renderers`, `model_audit.methods`). The built-ins register through the same entry
points in this package's `pyproject.toml` that a third-party package would use, so there is no
second table to keep in sync. Loading is lazy (`module:attr` is imported only when the plugin is
used, so `model-audit card` never imports torch), and a wrong name is a usage error with a
"did you mean".

A plugin class may declare its options as a pydantic model in the class attribute `Options`
(`extra="forbid"`): `create()` validates the user's `key=value` strings against it before the
plugin is built, so a misspelt or unknown option is an error naming the valid ones before any
model loads or any request is sent. (A plugin without `Options` gets its options unchecked.)
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from audit.errors import UsageError
from audit.redact import is_secret_name, redact_text

GROUPS = {
    "backend": "model_audit.backends",
    "scorer": "model_audit.scorers",
    "renderer": "model_audit.renderers",
    "method": "model_audit.methods",
}


class PluginOptions(BaseModel):
    """Base of every plugin's options: unknown keys are rejected, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Plugin:
    """One registered plugin: its name, `module:attr` target and the distribution that provides it."""

    name: str
    target: str
    provider: str


class Registry:
    """The plugins of one entry-point group."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.group = GROUPS[kind]

    def plugins(self) -> dict[str, Plugin]:
        """Every registered plugin by name (the first registration of a name wins)."""
        found: dict[str, Plugin] = {}
        for ep in entry_points(group=self.group):
            dist = getattr(ep, "dist", None)
            provider = getattr(dist, "name", "") or ""
            found.setdefault(ep.name, Plugin(ep.name, ep.value, provider))
        return dict(sorted(found.items()))

    def names(self) -> list[str]:
        return list(self.plugins())

    def check(self, name: str) -> Plugin:
        """The plugin of that name, or a usage error with a "did you mean"."""
        plugins = self.plugins()
        if name in plugins:
            return plugins[name]
        if not plugins:
            raise UsageError(
                f"no {self.kind} plugins are registered (entry-point group {self.group})",
                "install the package (pip install -e . in a checkout) so its entry points exist",
            )
        close = difflib.get_close_matches(name, list(plugins), n=1)
        raise UsageError(
            f"unknown {self.kind} '{name}'",
            f"did you mean '{close[0]}'?" if close else f"choose from {', '.join(plugins)}",
        )

    def load(self, name: str) -> Any:
        """Import and return the plugin's object (a class or a function)."""
        plugin = self.check(name)
        module, _, attr = plugin.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj

    def options_model(self, name: str) -> type[BaseModel] | None:
        """The plugin's declared options model, if any."""
        model = getattr(self.load(name), "Options", None)
        return model if isinstance(model, type) and issubclass(model, BaseModel) else None

    def validate_options(self, name: str, raw: Mapping[str, Any]) -> BaseModel | None:
        """Validate `key=value` options against the plugin's Options (exit 2 naming the valid ones).

        A plugin that declares no Options gets its options unchecked (None is returned).
        """
        model = self.options_model(name)
        if model is None:
            return None
        return validate_with(model, raw, f"{self.kind} '{name}'")

    def create(self, name: str, raw_options: Mapping[str, Any] | None = None, **context: Any) -> Any:
        """Validate the options, then build the plugin.

        Backends get the validated Options instance and the run context: `cls(options, **context)`;
        scorers take their options as keyword arguments: `cls(**options)`.
        """
        cls = self.load(name)
        raw = dict(raw_options or {})
        options = self.validate_options(name, raw)
        if self.kind == "backend":
            return cls(options if options is not None else raw, **context)
        fields = options.model_dump(exclude_unset=True) if options is not None else raw
        return cls(**fields, **context)


def validate_with(model: type[BaseModel], raw: Mapping[str, Any], what: str) -> BaseModel:
    """Validate options against a model; the error names the option, the problem and the valid names."""
    valid = list(model.model_fields)
    unknown = [k for k in raw if k not in valid]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, valid, n=1)
        raise UsageError(
            f"unknown option '{key}' for {what}",
            (f"did you mean '{close[0]}'? " if close else "")
            + f"valid options: {', '.join(valid) or 'none'}",
        )
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "options"
        value = str(raw.get(loc, ""))
        # Never echo what may carry credentials: userinfo, a query string, a secret-named option.
        shown = "***" if "@" in value or "?" in value or is_secret_name(loc) else f"{redact_text(value):.80}"
        field = model.model_fields.get(loc)
        form = f"{loc}: {field.description}; " if field is not None and field.description else ""
        raise UsageError(
            f"invalid option {loc}={shown} for {what}: {err['msg']}",
            f"{form}valid options: {', '.join(valid)}",
        ) from exc


def coerce_options(model: type[BaseModel], options: Any, what: str) -> Any:
    """An Options instance as given, or a mapping of `key=value` strings validated into one."""
    if isinstance(options, model):
        return options
    return validate_with(model, dict(options or {}), what)


BACKENDS = Registry("backend")
SCORERS = Registry("scorer")
RENDERERS = Registry("renderer")
METHODS = Registry("method")
