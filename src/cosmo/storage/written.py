"""What a save tells the caller: the log position of its last event, and the topics of the events it appended."""

from __future__ import annotations

from collections.abc import Iterable


class Written(int):
    """A position (an int, so it goes wherever a position went) that also knows which event topics the save wrote:
    read-your-writes needs to know whether a projection that is stuck would have shown this write."""

    topics: frozenset[str]

    def __new__(cls, position: int, topics: Iterable[str] = ()) -> Written:
        written = super().__new__(cls, position)
        written.topics = frozenset(topics)
        return written
