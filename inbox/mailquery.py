"""The Sales Inbox's search language (B2, B3): what a user types in the search box, and what a
saved view (`MailView.query`) keeps, as plain data. Pure: no Django, no database.

    offer "price list" -spam from:alice@acme.com to:acme.com label:"Big deal"
    has:attachment is:unread is:linked before:2026-11-01 after:2026/10/01

- Free words and "quoted phrases" are searched in the subject, the body, the participants'
  names and addresses and the attachments' file names (`inbox.search`); `-word` leaves out
  conversations with the word.
- `from:` and `to:` (To, Cc and Bcc) take an address (`alice@acme.com`), a domain
  (`acme.com`) or a name (`alice`, `"Alice Smith"`).
- `label:` names a label (any case); `has:attachment`; `is:unread` / `is:read`;
  `is:linked` / `is:unlinked` (to a person, deal, lead or project); `before:` / `after:` take
  a date (2026-11-01 or 2026/11/01) and compare the conversation's latest message: `after:`
  from the start of that day, `before:` until the start of that day.

Operator names are case-insensitive; a word with a colon that is not an operator (`10:30`,
`re:`) is a plain word. Mistakes never raise: the query keeps what it understood and says what
it did not in `errors`, in plain words for the search box. `to_text` writes a query back in a
canonical form, so `parse(to_text(q)) == q` for a query without errors."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

# Words of `has:` and `is:` and what each sets.
_HAS = {"attachment": True, "attachments": True}
_IS_UNREAD = {"unread": True, "read": False}
_IS_LINKED = {"linked": True, "unlinked": False}
_OPERATORS = ("from", "to", "label", "has", "is", "before", "after")
_DATE = re.compile(r"([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})")
# A token: an optional "-", an optional "operator:", then a quoted value or a bare one. An
# unclosed quote runs to the end of the text.
_TOKEN = re.compile(
    r"""(?P<neg>-)?(?:(?P<op>[A-Za-z]+):)?(?:"(?P<quoted>[^"]*)"?|(?P<bare>[^\s"]+))"""
)
# A value that must be quoted to read back the same (spaces, quotes, a leading "-", a colon
# that could read as an operator).
_NEEDS_QUOTES = re.compile(r"""[\s":]|^-""")


@dataclass(frozen=True)
class MailQuery:
    terms: tuple[str, ...] = ()  # free words and "quoted phrases" (a phrase is one item)
    excluded: tuple[str, ...] = ()  # -word, -"a phrase"
    from_: tuple[str, ...] = ()  # from:alice@x.com, from:acme.com, from:alice, from:"Alice S"
    to: tuple[str, ...] = ()  # to: To, Cc and Bcc
    labels: tuple[str, ...] = ()  # label:Hot, label:"Big deal"
    has_attachment: bool | None = None  # has:attachment
    unread: bool | None = None  # is:unread (True) / is:read (False)
    linked: bool | None = None  # is:linked (True) / is:unlinked (False)
    before: date | None = None  # the latest message before this day
    after: date | None = None  # the latest message on this day or later
    errors: tuple[str, ...] = field(default=(), compare=True)

    @property
    def has_text(self) -> bool:
        """Anything the full-text index answers (words, phrases, from:, to:)."""
        return bool(self.terms or self.excluded or self.from_ or self.to)

    @property
    def is_empty(self) -> bool:
        return self == MailQuery(errors=self.errors)


@dataclass
class _Builder:
    terms: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    from_: list[str] = field(default_factory=list)
    to: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    has_attachment: bool | None = None
    unread: bool | None = None
    linked: bool | None = None
    before: date | None = None
    after: date | None = None
    errors: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)

    def build(self) -> MailQuery:
        return MailQuery(
            terms=tuple(self.terms),
            excluded=tuple(self.excluded),
            from_=tuple(self.from_),
            to=tuple(self.to),
            labels=tuple(self.labels),
            has_attachment=self.has_attachment,
            unread=self.unread,
            linked=self.linked,
            before=self.before,
            after=self.after,
            errors=tuple(self.errors),
        )


def _date(value: str) -> date | None:
    found = _DATE.fullmatch(value)
    if found is None:
        return None
    try:
        return date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:  # 2026-02-30
        return None


def _operator(builder: _Builder, op: str, value: str) -> None:
    """Apply one `op:value` (op lower-cased, value stripped)."""
    if op in ("from", "to", "label"):
        if not value:
            example = {"from": "from:alice@example.com", "to": "to:acme.com", "label": "label:Hot"}
            builder.error(f"{op}: needs a value, like {example[op]}")
            return
        {"from": builder.from_, "to": builder.to, "label": builder.labels}[op].append(value)
    elif op == "has":
        if value.lower() in _HAS:
            builder.has_attachment = True
        else:
            builder.error("has: understands has:attachment")
    elif op == "is":
        word = value.lower()
        if word in _IS_UNREAD:
            builder.unread = _IS_UNREAD[word]
        elif word in _IS_LINKED:
            builder.linked = _IS_LINKED[word]
        else:
            builder.error("is: understands is:unread, is:read, is:linked and is:unlinked")
    else:  # before, after
        day = _date(value)
        if day is None:
            builder.error(f"{op}: needs a date like 2026-11-01")
        elif op == "before":
            builder.before = day
        else:
            builder.after = day


def parse(text: str) -> MailQuery:
    """The query a user typed. Never raises; what it cannot read is named in `errors`."""
    builder = _Builder()
    for found in _TOKEN.finditer(text):
        negated = found["neg"] is not None
        op = (found["op"] or "").lower()
        quoted = found["quoted"] is not None
        value = (found["quoted"] if quoted else found["bare"] or "").strip()
        if found["op"] and op not in _OPERATORS:
            # Not an operator: the colon is part of a word ("10:30", "re:").
            value = f"{found['op']}:{value}" if value else f"{found['op']}:"
            op = ""
        if op:
            if negated:
                builder.error(f"-{op}: is not supported: leave out words with -word")
                continue
            _operator(builder, op, " ".join(value.split()))
            continue
        value = " ".join(value.split())
        if not quoted and value.endswith(":") and value[:-1].lower() in _OPERATORS:
            # "from:" with nothing after it (or a space before its value).
            _operator(builder, value[:-1].lower(), "")
            continue
        if not value or (not quoted and value == "-"):
            continue
        (builder.excluded if negated else builder.terms).append(value)
    if builder.before and builder.after and builder.after >= builder.before:
        builder.error("after: must be earlier than before:")
    return builder.build()


def _quoted(value: str) -> str:
    return f'"{value}"' if not value or _NEEDS_QUOTES.search(value) else value


def to_text(query: MailQuery) -> str:
    """The query in canonical form: words, left-out words, then the operators in a fixed
    order. Errors are not written (they are about the text the user typed)."""
    parts = [_quoted(term) for term in query.terms]
    parts += [f"-{_quoted(term)}" for term in query.excluded]
    parts += [f"from:{_quoted(value)}" for value in query.from_]
    parts += [f"to:{_quoted(value)}" for value in query.to]
    parts += [f"label:{_quoted(value)}" for value in query.labels]
    if query.has_attachment:
        parts.append("has:attachment")
    if query.unread is not None:
        parts.append("is:unread" if query.unread else "is:read")
    if query.linked is not None:
        parts.append("is:linked" if query.linked else "is:unlinked")
    if query.before is not None:
        parts.append(f"before:{query.before.isoformat()}")
    if query.after is not None:
        parts.append(f"after:{query.after.isoformat()}")
    return " ".join(parts)
