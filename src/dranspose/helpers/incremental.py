"""``IncrementalBuffer``: an array that grows as entries arrive, in any order (reducers).

Each entry (a scalar or an array) goes to a row ``index``; the first entry fixes the row shape
and dtype (later entries are cast to it). Rows not received yet hold ``filler_value``. The
buffer reads as a numpy array of the rows up to the highest index received, or, with
``no_gaps=True``, only up to the first row still missing, so a live plot never shows filler.
Not thread-safe: guard it with the reducer's ``publish_rlock`` when HDF REST reads it.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import numpy.typing as npt


class IncrementalBuffer:
    """Rows indexed by event number (0-based), stored in a geometrically growing array."""

    def __init__(
        self,
        initial_rows: int = 16,
        grow_factor: float = 2,
        filler_value: Union[int, float] = 0,
        no_gaps: bool = False,
    ) -> None:
        if isinstance(initial_rows, bool) or not isinstance(initial_rows, int) or initial_rows < 1:
            raise ValueError(f"initial_rows must be an int >= 1, not {initial_rows!r}")
        if not grow_factor > 1:
            raise ValueError(f"the grow factor must be > 1, not {grow_factor!r}")
        self._rows = initial_rows
        self._grow = float(grow_factor)
        self._filler = filler_value
        self._no_gaps = no_gaps
        self._arr: Optional[np.ndarray] = None
        self._top = -1  # highest index received
        self._contiguous = 0  # every index below this one has been received
        self._ahead: set[int] = set()  # received indices >= _contiguous

    # ---- writing
    def add_entry(self, index: int, data: npt.ArrayLike) -> None:
        """Store ``data`` at row ``index`` (overwrites a row received before).

        Raises ValueError for a negative index or a shape other than the first entry's.
        """
        index = int(index)
        if index < 0:
            raise ValueError(f"index must be >= 0, not {index}")
        entry = np.asarray(data)
        if self._arr is None:
            self._arr = np.full((self._rows, *entry.shape), self._filler, dtype=entry.dtype)
        if entry.shape != self._arr.shape[1:]:
            raise ValueError(f"entry of shape {entry.shape} does not match the buffer's rows {self._arr.shape[1:]}")
        self._reserve(index + 1)
        self._arr[index] = entry
        self._top = max(self._top, index)
        if index >= self._contiguous:
            self._ahead.add(index)
            while self._contiguous in self._ahead:
                self._ahead.remove(self._contiguous)
                self._contiguous += 1

    def _reserve(self, rows: int) -> None:
        assert self._arr is not None
        capacity = self._arr.shape[0]
        if rows <= capacity:
            return
        while capacity < rows:
            capacity = max(int(capacity * self._grow), capacity + 1)
        grown = np.full((capacity, *self._arr.shape[1:]), self._filler, dtype=self._arr.dtype)
        grown[: self._top + 1] = self._arr[: self._top + 1]
        self._arr = grown

    # ---- reading
    def has_entry(self, index: int) -> bool:
        """Whether row ``index`` has been received."""
        return 0 <= index < self._contiguous or index in self._ahead

    def is_empty(self) -> bool:
        """True until the first entry arrives."""
        return self._arr is None

    def preview(self, copy: bool = True, no_gaps: bool = False) -> np.ndarray:
        """The rows up to the highest index received (``no_gaps``: up to the first missing
        row); a copy unless ``copy=False`` (then a view the next ``add_entry`` may replace).
        Empty buffer: ``np.zeros((0,))``."""
        if self._arr is None:
            return np.zeros((0,))
        end = self._contiguous if no_gaps else self._top + 1
        view = self._arr[:end]
        return view.copy() if copy else view

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        out = self.preview(copy=bool(copy), no_gaps=self._no_gaps)
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key: Any) -> Any:
        return self.preview(copy=False)[key]

    def __len__(self) -> int:
        return int(self.preview(copy=False).shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.preview(copy=False).shape)

    @property
    def dtype(self) -> np.dtype:
        """The dtype fixed by the first entry (ValueError before any entry)."""
        if self._arr is None:
            raise ValueError("the buffer has no entries yet, so no dtype")
        return self._arr.dtype
