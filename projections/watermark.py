"""Which positions a projection has applied: all up to a watermark, plus some beyond it.

Kafka keeps order per aggregate only, so events arrive out of global order across
partitions. Each envelope names its predecessor in the log, so the watermark moves along
that chain: "everything up to W is applied" is exact even though positions have holes.
The read-your-writes guarantee and the duplicate check both come from it, with no
per-aggregate bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Watermark:
    position: int = 0
    beyond: dict[int, int] = field(default_factory=dict)  # position -> its predecessor
    # predecessor -> position, kept in step with `beyond`: marking stays O(1) however many
    # positions wait beyond the watermark (thousands, when partitions are far apart)
    _next: dict[int, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._next = {previous: position for position, previous in self.beyond.items()}

    def has(self, position: int) -> bool:
        return position <= self.position or position in self.beyond

    def mark(self, position: int, previous: int) -> None:
        self.beyond[position] = previous
        self._next[previous] = position
        while self.position in self._next:
            self.position = self._next.pop(self.position)
            del self.beyond[self.position]

    def reach(self) -> int:
        """Where `mark` would take the watermark: along the predecessor chain through the
        positions beyond it, as far as it runs (they may chain on when read back whole)."""
        reached = self.position
        while reached in self._next:
            reached = self._next[reached]
        return reached

    def copy(self) -> Watermark:
        return Watermark(self.position, dict(self.beyond))
