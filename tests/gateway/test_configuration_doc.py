"""docs/configuration.md against the settings models: every key once, and its default, environment variable and
accepted values exactly as edgegen/gateway/config.py has them; only the meaning column is written by hand.

When a key is added or changed, the failure prints the row to paste (fill in its meaning):
``.venv/bin/python -m tests.gateway.test_configuration_doc`` prints every row the code implies.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from edgegen.gateway import config
from edgegen.gateway.protocol.topics import IDENTIFIER_PATTERN

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

# what each validating type of config.py accepts, by its validator function
_VALIDATED = {
    get_args(alias)[1].func: text
    for alias, text in (
        (config.MqttUrl, "`mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]`"),
        (config.HttpUrl, "`http://HOST[:PORT]` or `https://HOST[:PORT]`"),
        (config.Identifier, "identifier"),
        (config.Wildcard, "identifier or `+`"),
        (config.StreamPattern, "`SITE/NODE/STREAM`, each an identifier or `+`"),
        (config.ExistingFile, "path of an existing file"),
        (config.GenerativeModel, "path without suffix, or `skab`, `tep` or `stock`"),
    )
}
_PLAIN = {bool: "`true` or `false`", SecretStr: "secret text", Path: "path"}
_SIGNS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}


def _scalar(kind: str, metadata: list[Any]) -> str:
    """``kind`` with the bounds in ``metadata``: "integer > 0", "number 1 to 255", "non-empty text"."""
    if any(isinstance(item, annotated_types.MinLen) and item.min_length == 1 for item in metadata):
        return f"non-empty {kind}"
    bounds = {name: getattr(item, name) for item in metadata for name in _SIGNS if hasattr(item, name)}
    if bounds.keys() == {"ge", "le"}:
        return f"{kind} {bounds['ge']} to {bounds['le']}"
    words = [f"{_SIGNS[name]} {value}" for name, value in bounds.items()]
    return f"{kind} {' and '.join(words)}" if words else kind


def accepted(annotation: Any, metadata: list[Any]) -> str:
    """The accepted values of a field, in words."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        (inner,) = (arg for arg in get_args(annotation) if arg is not type(None))
        return f"{accepted(inner, [])}, or unset"
    if get_origin(annotation) is typing.Annotated:
        annotation, *extra = get_args(annotation)
        metadata = [*metadata, *extra]
    validators = [_VALIDATED[item.func] for item in metadata if hasattr(item, "func")]
    if validators:
        return validators[0]
    if get_origin(annotation) is Literal:
        names = [f'`"{value}"`' for value in get_args(annotation)]
        return f"{', '.join(names[:-1])} or {names[-1]}"
    if get_origin(annotation) is list:
        return "tables, below"
    return _PLAIN.get(annotation) or _scalar({int: "integer", float: "number", str: "text"}[annotation], metadata)


def default(field: FieldInfo) -> str:
    value = field.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if value == []:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str | Path):
        return f'`"{value}"`'
    return f"`{value}`"


def rows(
    model: type[BaseModel] = config.Settings, prefix: str = "", env: str | None = ""
) -> Iterator[tuple[str, ...]]:
    """(key, default, environment variable, accepted) for every key, in the models' order, sections after keys."""
    sections: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sections.append((name, annotation))
            continue
        listed = env is None or get_origin(annotation) is list  # a list of tables has no environment variable
        variable = "TOML only" if listed else f"`{config.ENV_PREFIX}{env}{name.upper()}`"
        yield f"`{prefix}{name}`", default(field), variable, accepted(annotation, field.metadata)
        if get_origin(annotation) is list:
            (item,) = get_args(annotation)
            yield from rows(item, f"{prefix}{name}[].", None)
    for name, section in sections:
        yield from rows(section, f"{prefix}{name}.", f"{env}{name.upper()}__")


def markdown(row: tuple[str, ...], meaning: str = "") -> str:
    return f"| {' | '.join(row)} | {meaning} |"


def documented() -> dict[str, tuple[list[str], str]]:
    """Key -> (the doc's cells before the meaning, the meaning), from every table row naming a key."""
    out: dict[str, tuple[list[str], str]] = {}
    for line in DOC.read_text().splitlines():
        if line.startswith("| `"):
            *cells, meaning = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
            assert cells[0] not in out, f"{cells[0]} is documented twice"
            out[cells[0]] = (cells, meaning)
    return out


def test_every_key_is_documented_once_with_the_code_s_default_variable_and_values() -> None:
    expected = {row[0]: row for row in rows()}
    doc = documented()

    missing = [markdown(expected[key], "MEANING") for key in expected if key not in doc]
    assert not missing, "docs/configuration.md lacks these keys; add the rows:\n" + "\n".join(missing)
    assert sorted(doc) == sorted(expected), "docs/configuration.md documents keys the settings do not have"
    wrong = [markdown(row, doc[key][1]) for key, row in expected.items() if tuple(doc[key][0]) != row]
    assert not wrong, "docs/configuration.md differs from the code; the rows should read:\n" + "\n".join(wrong)
    assert all(meaning for _, meaning in doc.values()), "every key needs its meaning"


def test_the_sections_are_in_the_order_of_the_code() -> None:
    assert list(documented()) == [row[0] for row in rows()]


def test_the_identifier_rule_is_the_protocol_s() -> None:
    assert f"`{IDENTIFIER_PATTERN.pattern}`" in DOC.read_text()


if __name__ == "__main__":
    for row in rows():
        print(markdown(row, documented().get(row[0], ([], "MEANING"))[1] if DOC.exists() else "MEANING"))
