"""Typed parameter descriptions (compat with ``dranspose.parameters``).

A description converts between the raw bytes stored for a parameter and its typed value.
Bool is true only for ``b"True"``; a malformed int/float parses to 0 with a warning (the old
behaviour, kept because analyses rely on it).
"""

from __future__ import annotations

import logging
import functools
from typing import Annotated, Any, Callable, Generic, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from dranspose.protocol import ParameterName

log = logging.getLogger(__name__)

R = TypeVar("R")


class either_method(Generic[R]):
    """A method callable on the class as well as on an instance (the old API had static
    ``from_bytes``/``to_bytes``: ``IntParameter.from_bytes(b"3")``). On the class, the
    function receives ``None`` as ``self``."""

    def __init__(self, fn: Callable[..., R]) -> None:
        self.fn = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __get__(self, obj: Any, cls: type | None = None) -> Callable[..., R]:
        return functools.partial(self.fn, obj)


def _name(desc: "ParameterBase | None") -> str:
    return desc.name if desc is not None else "?"


class ParameterBase(BaseModel):
    model_config = ConfigDict(ignored_types=(either_method,))

    name: ParameterName
    description: str | None = None
    dtype: str = "bytes"
    default: Any = None

    @either_method
    def from_bytes(self, data: bytes) -> Any:
        return data

    @either_method
    def to_bytes(self, value: Any) -> bytes:
        return bytes(value)


class StrParameter(ParameterBase):
    dtype: Literal["str"] = "str"
    default: str = ""

    @either_method
    def from_bytes(self, data: bytes) -> str:
        return data.decode(errors="replace")

    @either_method
    def to_bytes(self, value: Any) -> bytes:
        return str(value).encode()


class FileParameter(StrParameter):
    """A file's content uploaded as the parameter (``{name}_file`` in the old API)."""

    dtype: Literal["file"] = "file"  # type: ignore[assignment]


class IntParameter(ParameterBase):
    dtype: Literal["int"] = "int"
    default: int = 0

    @either_method
    def from_bytes(self, data: bytes) -> int:
        try:
            return int(data)
        except ValueError:
            log.warning("parameter %s: %r is not an int, using 0", _name(self), data[:40])
            return 0

    @either_method
    def to_bytes(self, value: Any) -> bytes:
        return str(int(value)).encode()


class FloatParameter(ParameterBase):
    dtype: Literal["float"] = "float"
    default: float = 0.0

    @either_method
    def from_bytes(self, data: bytes) -> float:
        try:
            return float(data)
        except ValueError:
            log.warning("parameter %s: %r is not a float, using 0", _name(self), data[:40])
            return 0.0

    @either_method
    def to_bytes(self, value: Any) -> bytes:
        return str(float(value)).encode()


class BoolParameter(ParameterBase):
    dtype: Literal["bool"] = "bool"
    default: bool = False

    @either_method
    def from_bytes(self, data: bytes) -> bool:
        return data == b"True"

    @either_method
    def to_bytes(self, value: Any) -> bytes:
        return b"True" if value else b"False"


class BinaryParameter(ParameterBase):
    dtype: Literal["binary"] = "binary"
    default: bytes = b""


ParameterType = Annotated[
    Union[StrParameter, FileParameter, IntParameter, FloatParameter, BoolParameter, BinaryParameter],
    Field(discriminator="dtype"),
]
parameter_list_adapter: TypeAdapter[list[ParameterType]] = TypeAdapter(list[ParameterType])

#: The old module's names for the adapters (``ParameterList.validate_json(...)``).
Parameter: TypeAdapter[ParameterType] = TypeAdapter(ParameterType)
ParameterList = parameter_list_adapter
