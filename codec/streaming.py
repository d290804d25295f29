"""Streaming state: one `forward` serves offline and chunk-by-chunk processing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from torch import nn

StateT = TypeVar("StateT")


class StreamingModule(nn.Module, Generic[StateT]):
    """A module that can run offline (no state) or in streaming mode (a typed state per layer).

    `with module.streaming(batch_size):` gives every `StreamingModule` in the tree a fresh state
    from `init_state` and clears them all on exit. Layers that carry history override
    `init_state`; containers inherit it and return `None`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._streaming = False
        self._state: StateT | None = None

    @property
    def is_streaming(self) -> bool:
        return self._streaming

    @property
    def state(self) -> StateT | None:
        """This layer's streaming state; `None` offline."""
        return self._state

    def init_state(self, batch_size: int) -> StateT | None:
        """The state at the start of a stream (override in layers that keep history)."""
        return None

    def _streaming_children(self) -> Iterator[StreamingModule]:
        return (m for m in self.modules() if isinstance(m, StreamingModule))

    @contextmanager
    def streaming(self, batch_size: int) -> Iterator[None]:
        """Switch the whole module tree to streaming for `batch_size` parallel streams."""
        if self._streaming:
            raise RuntimeError("already streaming: leave the current `streaming()` block first")
        for module in self._streaming_children():
            module._streaming = True
            module._state = module.init_state(batch_size)
        try:
            yield
        finally:
            for module in self._streaming_children():
                module._streaming = False
                module._state = None
