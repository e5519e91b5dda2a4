"""Which positions a projection has applied: all up to a watermark, plus a few beyond it.

Kafka keeps order per aggregate only, so events arrive out of global order across
partitions. Because the event store's positions are gapless, "everything up to P is
applied" is exactly the watermark: the read-your-writes guarantee and the duplicate check
both come from it, with no per-aggregate bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Watermark:
    position: int = 0
    beyond: set[int] = field(default_factory=set)

    def has(self, position: int) -> bool:
        return position <= self.position or position in self.beyond

    def mark(self, position: int) -> None:
        self.beyond.add(position)
        while self.position + 1 in self.beyond:
            self.position += 1
            self.beyond.remove(self.position)
