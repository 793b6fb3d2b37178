"""Every reader of conversations goes through `inbox/visibility.py` (D1 to D4).

Reader modules are the edges that show data to someone: views, API modules, serializers, web
modules, Celery tasks, exports and template tags of `crm`, `contacts`, `inbox` and `mailsync`.
They may ask `inbox.selectors` (which starts from `inbox.visibility`), `inbox.visibility` or
`inbox.services`; they may not reach the mail tables themselves. In a reader module the checker
refuses:

- a mail model's name: imported (outside `if TYPE_CHECKING:`, where it exists for annotations
  only and cannot query), or as an attribute (`models.MailThread`), or as a string
  (`apps.get_model("inbox", "MailThread")`);
- `objects`, `_default_manager` or `_base_manager` on a mail model;
- the reverse accessors and lookups from other models into the mail tables
  (`account.mailthread_set`, `filter(mailthread__subject=...)`), read from Django's own meta, so
  a new relation is covered the day it is added;
- a string holding a mail table's name (raw SQL).

And in `inbox/selectors.py`, every public function that touches a mail model calls
`visibility.` (directly or through a private helper of the module), or is one of the few listed
in `ALREADY_AUTHORIZED`, which take a thread or message ids their caller already read through
visibility and say so in their docstring.

Static checks catch the plain ways in, not every way: a reader handed a thread by a selector can
still follow its relations. The visibility matrix (`test_visibility_matrix.py`) tests the
behaviour.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]
APPS = ("crm", "contacts", "inbox", "mailsync")
READER_PATTERNS = (
    "*/api.py",
    "*/api/*.py",
    "*/api_*.py",
    "*/web/*.py",  # fnmatch's `*` crosses `/`: web/**/*.py too
    "*/views.py",
    "*/views/*.py",
    "*serializers*.py",
    "*/tasks.py",
    "*/exports.py",
    "*/templatetags/*.py",
)
MAIL_MODELS = frozenset(
    {
        "MailThread",
        "MailMessage",
        "MailThreadMessage",
        "MailThreadKey",
        "MailParticipant",
        "MailAttachment",
        "MailMessageLocation",
        "MailThreadPerson",
        "MailThreadLabel",
        "MailCounter",
        "MailAction",
        "MailOutbound",
        "MailDraft",
        "MailDraftFile",
        "MailTrackingEvent",
    }
)
MANAGERS = frozenset({"objects", "_default_manager", "_base_manager"})

# Public selectors that touch mail models without asking `visibility`: each takes what its
# caller already read through visibility, and its docstring says the caller checked.
ALREADY_AUTHORIZED = {
    "thread_messages": "the messages of a thread the caller read with access_thread",
    "message_facts": (
        "parties, flags, folders and attachment kinds of a page of messages the caller read "
        "through visibility (access_message, thread_messages, item_messages)"
    ),
    "thread_labels": (
        "the labels of a page of threads the caller read through visibility "
        "(mailbox_threads_by_id, access_mailbox_thread)"
    ),
    "mailbox_folders": "the counts of accounts the caller read with mailbox_accounts",
    "thread_parties": (
        "the parties of a page of threads the caller read through visibility (thread_list, "
        "access_thread, item_conversations)"
    ),
}


def _mail_tables() -> frozenset[str]:
    return frozenset(apps.get_model("inbox", name)._meta.db_table for name in MAIL_MODELS)


def _ways_in() -> tuple[frozenset[str], frozenset[str]]:
    """The reverse accessors (`mailthread_set`) and query names (`mailthread`) by which other
    models reach a mail model, from Django's meta."""
    mail = {apps.get_model("inbox", name) for name in MAIL_MODELS}
    accessors, lookups = set(), set()
    for model in apps.get_models():
        if model in mail:
            continue
        for relation in model._meta.related_objects:
            if relation.related_model not in mail or relation.hidden:
                continue
            accessors.add(relation.get_accessor_name())
            lookups.add(relation.field.related_query_name())
    return frozenset(name for name in accessors if name), frozenset(lookups)


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _type_checking_only(tree: ast.Module) -> set[int]:
    """The ids of the nodes under `if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        test = node.test
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
        if name == "TYPE_CHECKING":
            for statement in node.body:
                inside.update(id(child) for child in ast.walk(statement))
    return inside


def _bare_strings(tree: ast.Module) -> set[int]:
    """Strings standing alone as statements (docstrings, comments in quotes): never run."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def _annotations(tree: ast.Module) -> set[int]:
    """The nodes of annotations (`thread: "MailThread"` names a type, it reads nothing)."""
    roots: list[ast.expr | None] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg | ast.AnnAssign):
            roots.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            roots.append(node.returns)
    return {id(child) for root in roots if root is not None for child in ast.walk(root)}


def _is_lookup(text: str, lookups: frozenset[str]) -> bool:
    return any(text == name or text.startswith(f"{name}__") for name in lookups)


def reader_violations(source: str, path: str = "<module>") -> list[Violation]:
    """What in one reader module's source reaches the mail tables without visibility."""
    tree = ast.parse(source, filename=path)
    accessors, lookups = _ways_in()
    tables = _mail_tables()
    typing_only = _type_checking_only(tree)
    inert = _bare_strings(tree) | _annotations(tree)
    found: list[Violation] = []

    def add(node: ast.AST, what: str) -> None:
        found.append(Violation(path, getattr(node, "lineno", 0), what))

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and id(node) not in typing_only:
            for alias in node.names:
                if alias.name in MAIL_MODELS:
                    add(node, f"imports the mail model {alias.name} (from {node.module})")
                elif alias.name == "*" and node.module == "inbox.models":
                    add(node, "imports * from inbox.models")
        elif isinstance(node, ast.Attribute):
            value = node.value
            owner = value.id if isinstance(value, ast.Name) else getattr(value, "attr", None)
            if node.attr in MANAGERS and owner in MAIL_MODELS:
                add(node, f"reads {owner}.{node.attr}")
            elif node.attr in MAIL_MODELS:
                add(node, f"reaches the mail model {node.attr} as an attribute")
            elif node.attr in accessors:
                add(node, f"follows the reverse relation {node.attr} into the mail tables")
        elif isinstance(node, ast.keyword) and node.arg and _is_lookup(node.arg, lookups):
            add(node, f"filters across the mail tables with {node.arg}=")
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inert
        ):
            text = node.value
            lowered = text.lower()
            if text in MAIL_MODELS or lowered in {f"inbox.{m.lower()}" for m in MAIL_MODELS}:
                add(node, f"names the mail model {text!r}")
            elif any(table in lowered for table in tables):
                add(node, f"names a mail table in the string {text[:60]!r}")
            elif text in accessors or _is_lookup(text, lookups):
                add(node, f"follows the relation {text!r} into the mail tables")
    return sorted(found, key=lambda violation: (violation.line, violation.what))


def reader_modules() -> Iterator[Path]:
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative:
                continue
            if any(fnmatch.fnmatchcase(relative, pattern) for pattern in READER_PATTERNS):
                yield path


# --- inbox/selectors.py -------------------------------------------------------------------------


class _Uses(ast.NodeVisitor):
    """What a function's body refers to, annotations left out: they only name types."""

    def __init__(self) -> None:
        self.mail_models: set[str] = set()
        self.asks_visibility = False
        self.calls: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in MAIL_MODELS:
            self.mail_models.add(node.id)
        self.calls.add(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id == "visibility":
            self.asks_visibility = True
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_arg(self, node: ast.arg) -> None:
        return None

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        # A nested function: its defaults and body, not its annotations.
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        for statement in node.body:
            self.visit(statement)


def _body_uses(function: ast.FunctionDef) -> _Uses:
    uses = _Uses()
    for statement in function.body:
        uses.visit(statement)
    return uses


@dataclass(frozen=True)
class SelectorFacts:
    touches_mail: bool
    asks_visibility: bool
    docstring: str


def selector_facts(source: str) -> dict[str, SelectorFacts]:
    """Per public function of a selectors module: does it touch a mail model, does it ask
    visibility; both followed through the module's private helpers."""
    tree = ast.parse(source)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    uses = {name: _body_uses(node) for name, node in functions.items()}

    def reach(name: str, seen: set[str]) -> tuple[bool, bool]:
        own = uses[name]
        touches, asks = bool(own.mail_models), own.asks_visibility
        for called in own.calls:
            if called in functions and called.startswith("_") and called not in seen:
                seen.add(called)
                more_touches, more_asks = reach(called, seen)
                touches, asks = touches or more_touches, asks or more_asks
        return touches, asks

    facts = {}
    for name, node in functions.items():
        if name.startswith("_"):
            continue
        touches, asks = reach(name, {name})
        facts[name] = SelectorFacts(touches, asks, ast.get_docstring(node) or "")
    return facts


def selector_violations(source: str) -> list[str]:
    found = []
    for name, facts in selector_facts(source).items():
        if facts.touches_mail and not facts.asks_visibility and name not in ALREADY_AUTHORIZED:
            found.append(f"{name} reads mail models without inbox.visibility")
    return found


SELECTORS = ROOT / "inbox" / "selectors.py"


# --- The checks on the project ------------------------------------------------------------------


def test_reader_modules_are_found() -> None:
    """The patterns still match the project's layout: a check over nothing passes vacuously."""
    found = {path.relative_to(ROOT).as_posix() for path in reader_modules()}
    for expected in (
        "inbox/api.py",
        "inbox/web/emails.py",
        "mailsync/api.py",
        "mailsync/tasks.py",
        "mailsync/web/views.py",
        "contacts/api/serializers/v1.py",
        "contacts/exports.py",
        "crm/templatetags/change_log.py",
        "crm/web/views/home.py",
    ):
        assert expected in found


def test_no_reader_reaches_the_mail_tables_without_visibility() -> None:
    violations = [
        str(violation)
        for path in reader_modules()
        for violation in reader_violations(
            path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix()
        )
    ]
    assert violations == [], "\n".join(violations)


def test_every_public_selector_of_mail_asks_visibility() -> None:
    assert selector_violations(SELECTORS.read_text(encoding="utf-8")) == []


def test_the_already_authorized_selectors_exist_and_say_the_caller_checked() -> None:
    """The allow-list stays short and true: each entry is a public selector that touches mail
    and states its precondition ("the caller ...") in its docstring."""
    facts = selector_facts(SELECTORS.read_text(encoding="utf-8"))
    problems = []
    for name in ALREADY_AUTHORIZED:
        if name not in facts:
            problems.append(f"{name}: no such public selector")
        elif not facts[name].touches_mail:
            problems.append(f"{name}: touches no mail model, remove it from the list")
        elif "caller" not in facts[name].docstring.lower():
            problems.append(f"{name}: its docstring does not say the caller checked access")
    assert problems == [], "\n".join(problems)


# --- The checker catches what it is there for ---------------------------------------------------

SYNTHETIC_READER = '''
"""A view that reads inbox_mailthread in its docstring only: that is fine."""
from typing import TYPE_CHECKING

from django.db import connection

from inbox import models
from inbox import selectors
from inbox.models import MailThread

if TYPE_CHECKING:
    from inbox.models import MailMessage


def threads(request, account):
    a = MailThread.objects.filter(account=account)
    b = models.MailMessage._default_manager.all()
    c = account.mailthread_set.all()
    d = models.MailAccount.objects.filter(mailthread__subject="x")
    e = models.MailAccount.objects.values("mailthreadmessage__message_id")
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM inbox_mailparticipant")
    f = apps.get_model("inbox", "MailAttachment")
    return selectors.thread_list(membership=request.membership, folder="inbox")
'''

SYNTHETIC_SELECTORS = '''
from inbox import visibility
from inbox.models import MailMessage, MailThread


def _mine(membership):
    return visibility.mailbox_threads(membership=membership)


def _raw(company):
    return MailThread.objects.for_company(company)


def checked(*, membership):
    return MailThread.objects.filter(pk__in=visibility.visible_threads(membership=membership))


def checked_through_a_helper(*, membership):
    return MailMessage.objects.filter(thread__in=_mine(membership))


def unchecked(*, company):
    return MailMessage.objects.for_company(company)


def unchecked_through_a_helper(*, company):
    return _raw(company).count()


def annotated_only(*, thread: MailThread) -> MailThread:
    name: MailThread = thread
    return name


def thread_messages(*, company, thread):
    """(the caller checked access)"""
    return MailMessage.objects.for_company(company)
'''


def test_the_reader_check_catches_each_way_in() -> None:
    found = [(v.line, v.what) for v in reader_violations(SYNTHETIC_READER, "synthetic.py")]
    assert found == [
        (9, "imports the mail model MailThread (from inbox.models)"),
        (16, "reads MailThread.objects"),
        (17, "reaches the mail model MailMessage as an attribute"),
        (17, "reads MailMessage._default_manager"),
        (18, "follows the reverse relation mailthread_set into the mail tables"),
        (19, "filters across the mail tables with mailthread__subject="),
        (20, "follows the relation 'mailthreadmessage__message_id' into the mail tables"),
        (22, "names a mail table in the string 'SELECT id FROM inbox_mailparticipant'"),
        (23, "names the mail model 'MailAttachment'"),
    ]


def test_the_reader_check_passes_a_clean_module() -> None:
    clean = """
from typing import TYPE_CHECKING

from inbox import selectors

if TYPE_CHECKING:
    from inbox.models import MailThread


def subject(thread: "MailThread") -> str:
    return thread.subject


def threads(request):
    return selectors.thread_list(membership=request.membership, folder="getMailThreads")
"""
    assert reader_violations(clean) == []


def test_the_selector_check_catches_a_read_without_visibility() -> None:
    assert selector_violations(SYNTHETIC_SELECTORS) == [
        "unchecked reads mail models without inbox.visibility",
        "unchecked_through_a_helper reads mail models without inbox.visibility",
    ]
    facts = selector_facts(SYNTHETIC_SELECTORS)
    assert not facts["annotated_only"].touches_mail
    assert facts["thread_messages"].touches_mail
