"""A setting's description, written once beside its default: label, range, step, choices,
help, CLI flag, and whether it belongs to the machine or to a catalog. The CLI's flags, the
Settings page and the Evaluate page's sliders are generated from these."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from core.errors import SameSameError

Scope = Literal["catalog", "machine"]


@dataclass(frozen=True)
class SettingSpec:
    """What a user is told about one setting."""

    name: str
    label: str
    help: str
    group: str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] | None = None
    flag: str | None = None
    scope: Scope = "catalog"
    #: A threshold the Evaluate page can sweep and try.
    tunable: bool = False
    advanced: bool = False
    #: The CLI flag also takes a number, which sets this other (numeric) setting instead.
    number_sets: str | None = None

    @property
    def kind(self) -> type:
        return type(self.default)

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed, or None."""
        if self.choices is not None and value not in self.choices:
            shown = ", ".join(str(c) for c in self.choices)
            return f"{self.name} must be one of {shown}, not {value!r}"
        low = self.minimum is not None and value < self.minimum
        high = self.maximum is not None and value > self.maximum
        if (low or high) and self.minimum is not None and self.maximum is not None:
            return f"{self.name} must be between {self.minimum:g} and {self.maximum:g}, got {value}"
        if low:
            return f"{self.name} must be at least {self.minimum:g}, got {value}"
        if high:
            return f"{self.name} must be at most {self.maximum:g}, got {value}"
        return None

    def parse(self, value: Any) -> Any:
        """A stored or typed value as this setting's type (raises ValueError/TypeError)."""
        if isinstance(self.default, bool):
            if isinstance(value, bool):
                return value
            return str(value).strip().lower() in ("1", "true", "yes", "on")
        if isinstance(self.default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"{value} is not a whole number")
            return int(value)
        if isinstance(self.default, float):
            return float(value)
        return str(value)


def setting(
    default: Any,
    label: str,
    help: str,
    group: str,
    **options: Any,
) -> Any:
    """A dataclass field carrying its `SettingSpec` (the name is filled in by `specs`)."""
    return dataclasses.field(
        default=default,
        metadata={"spec": SettingSpec("", label, help, group, default, **options)},
    )


def specs(cls: type) -> tuple[SettingSpec, ...]:
    """The `SettingSpec` of every field of a settings dataclass, in declaration order."""
    found = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("spec")
        if spec is not None:
            found.append(dataclasses.replace(spec, name=f.name))
    return tuple(found)


class SettingsBase:
    """Validation, (de)serialisation and copying for a frozen settings dataclass whose fields
    were declared with `setting`."""

    def problems(self) -> list[str]:
        """Every field value its spec refuses (all at once, so a user fixes them together)."""
        return [
            problem
            for spec in specs(type(self))
            if (problem := spec.problem(getattr(self, spec.name))) is not None
        ]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """Build from stored or user values, ignoring unknown keys (older/newer versions)."""
        known = {spec.name: spec for spec in specs(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            spec = known.get(key)
            if spec is None:
                continue
            try:
                kwargs[key] = spec.parse(value)
            except (TypeError, ValueError) as exc:
                raise SameSameError(f"Setting {key!r} has an invalid value {value!r}") from exc
        return cls(**kwargs)

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
