"""Typed parameter descriptions (compat with ``dranspose.parameters``).

A description converts between the raw bytes stored for a parameter and its typed value.
Bool is true only for ``b"True"``; a malformed int/float parses to 0 with a warning (the old
behaviour, kept because analyses rely on it).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, TypeAdapter

from dranspose.protocol import ParameterName

log = logging.getLogger(__name__)


class ParameterBase(BaseModel):
    name: ParameterName
    description: str | None = None
    dtype: str = "bytes"
    default: Any = None

    def from_bytes(self, data: bytes) -> Any:
        return data

    def to_bytes(self, value: Any) -> bytes:
        return bytes(value)


class StrParameter(ParameterBase):
    dtype: Literal["str"] = "str"
    default: str = ""

    def from_bytes(self, data: bytes) -> str:
        return data.decode(errors="replace")

    def to_bytes(self, value: Any) -> bytes:
        return str(value).encode()


class FileParameter(StrParameter):
    """A file's content uploaded as the parameter (``{name}_file`` in the old API)."""

    dtype: Literal["file"] = "file"  # type: ignore[assignment]


class IntParameter(ParameterBase):
    dtype: Literal["int"] = "int"
    default: int = 0

    def from_bytes(self, data: bytes) -> int:
        try:
            return int(data)
        except ValueError:
            log.warning("parameter %s: %r is not an int, using 0", self.name, data[:40])
            return 0

    def to_bytes(self, value: Any) -> bytes:
        return str(int(value)).encode()


class FloatParameter(ParameterBase):
    dtype: Literal["float"] = "float"
    default: float = 0.0

    def from_bytes(self, data: bytes) -> float:
        try:
            return float(data)
        except ValueError:
            log.warning("parameter %s: %r is not a float, using 0", self.name, data[:40])
            return 0.0

    def to_bytes(self, value: Any) -> bytes:
        return str(float(value)).encode()


class BoolParameter(ParameterBase):
    dtype: Literal["bool"] = "bool"
    default: bool = False

    def from_bytes(self, data: bytes) -> bool:
        return data == b"True"

    def to_bytes(self, value: Any) -> bytes:
        return b"True" if value else b"False"


class BinaryParameter(ParameterBase):
    dtype: Literal["binary"] = "binary"  # type: ignore[assignment,unused-ignore]
    default: bytes = b""


ParameterType = Annotated[
    Union[StrParameter, FileParameter, IntParameter, FloatParameter, BoolParameter, BinaryParameter],
    Field(discriminator="dtype"),
]
parameter_list_adapter: TypeAdapter[list[ParameterType]] = TypeAdapter(list[ParameterType])
