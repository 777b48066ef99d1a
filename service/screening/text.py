"""Names in text: whole-word phrase search, and negation scoped to the name it is about.

REFERENCE, Which records count: names match whole words, case-insensitively. Negation applies to
free text only and to the matched name only (NegEx: Chapman et al. 2001): a cue before the name in
the same clause and within a few words, or a post-cue after it ("... ruled out"). A clause ends
at punctuation or at a break word ("but", "however"). Local cues ("without") stop a name just
after them in any text, a coding's display included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from service.screening.schema import Negation

__all__ = [
    "NameScanner",
    "NegationScope",
    "normal",
    "words_pattern",
]

# "/" is no clause break: it joins "r/o", "w/o" and combination products ("a/b").
_PUNCTUATION = r"[,;:.?!()\[\]|]"


def words_pattern(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """One alternation of whole-word phrases, longest first so that the longest phrase wins."""
    unique = sorted({p.strip().lower() for p in phrases if p.strip()}, key=len, reverse=True)
    if not unique:
        return None
    parts = []
    for phrase in unique:
        body = r"\s+".join(re.escape(word) for word in phrase.split())
        left = r"(?<!\w)" if phrase[0].isalnum() else ""
        right = r"(?!\w)" if phrase[-1].isalnum() else ""
        parts.append(f"{left}{body}{right}")
    return re.compile("|".join(parts), re.IGNORECASE)


def normal(text: str) -> str:
    """Lower case, single spaces: how texts are compared (a code.text copied from a display)."""
    return " ".join(text.lower().split())


@dataclass(frozen=True, slots=True)
class NegationScope:
    """The negation cues of ``terminology.yaml``, compiled."""

    pre: re.Pattern[str] | None
    post: re.Pattern[str] | None
    local: re.Pattern[str] | None
    breaks: re.Pattern[str]
    window: int
    local_window: int

    @classmethod
    def build(cls, negation: Negation) -> NegationScope:
        words = words_pattern(negation.clause_breaks)
        breaks = _PUNCTUATION if words is None else f"{_PUNCTUATION}|{words.pattern}"
        return cls(words_pattern(negation.cues), words_pattern(negation.post_cues),
                   words_pattern(negation.local_cues), re.compile(breaks, re.IGNORECASE),
                   negation.window_words, negation.local_window_words)

    def _before(self, text: str, start: int, window: int) -> str:
        clause = self.breaks.split(text[:start])[-1]
        return " ".join(clause.split()[-window:])

    def locally_negated(self, text: str, start: int) -> bool:
        """A local cue ("without") just before ``start`` in the same clause."""
        return self.local is not None and bool(
            self.local.search(self._before(text, start, self.local_window)))

    def negated(self, text: str, start: int, end: int) -> bool:
        """Free text: a pre-cue before the name, or a post-cue after it, in the same clause."""
        if self.pre is not None and self.pre.search(self._before(text, start, self.window)):
            return True
        if self.post is None:
            return False
        after = self.breaks.split(text[end:], maxsplit=1)[0]
        return bool(self.post.search(" ".join(after.split()[:self.window])))


@dataclass(frozen=True, slots=True)
class NameScanner:
    """The names of one rule or drug: find them in a text, minus phrases that mean else."""

    names: re.Pattern[str] | None
    excluded: re.Pattern[str] | None = None
    veto: re.Pattern[str] | None = None

    @classmethod
    def build(cls, names: Iterable[str], exclude: Iterable[str] = (),
              veto: Iterable[str] = ()) -> NameScanner:
        return cls(words_pattern(names), words_pattern(exclude), words_pattern(veto))

    def hits(self, text: str) -> list[re.Match[str]]:
        """Name occurrences in ``text`` (exclude phrases blanked, same offsets kept)."""
        if self.names is None:
            return []
        if self.veto is not None and self.veto.search(text):
            return []
        if self.excluded is not None:
            text = self.excluded.sub(lambda m: " " * len(m.group(0)), text)
        return list(self.names.finditer(text))

    def found(self, text: str, scope: NegationScope, *, free: bool) -> list[str]:
        """The names that count in ``text``: not after a local cue, and (free text) not negated."""
        out = []
        for hit in self.hits(text):
            if scope.locally_negated(text, hit.start()):
                continue
            if free and scope.negated(text, hit.start(), hit.end()):
                continue
            out.append(" ".join(hit.group(0).lower().split()))
        return out

    def negated_in(self, text: str, scope: NegationScope) -> bool:
        """Some name occurs in ``text`` (a note) and is negated there."""
        return any(scope.negated(text, hit.start(), hit.end()) for hit in self.hits(text))
