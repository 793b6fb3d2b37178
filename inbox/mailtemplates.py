"""Email templates, their folders, and signatures (B6): the writes and the permission-checked
reads, in one place for the Templates and Signatures pages, the API and `inbox.sending`.

Templates:
- a template is private to its owner, or `shared` with the whole company;
- it sits in a folder or in none; a folder is its owner's, or the company's (`owner` None,
  made and kept by admins) which everyone sees;
- everyone sees their own templates and the shared ones (`templates_visible`), admins no more:
  a private template is nobody else's business;
- the owner changes a template; an admin may also change (or delete) a shared one, but only
  its owner decides whether it is shared;
- a missing template and one the user may not see are the same `None` (`access_template`).

Bodies are cleaned on save (`inbox.sanitize.sanitize_authored_html`), so what is stored is
what the composer inserts and `inbox.sending` sends; smart fields (`{{deal.title}}`) stay in
them as written and are filled when a message is sent (`inbox.smartcontext`).

Signatures: a user's own for an account whose mailbox they read (`inbox.visibility`), and a
team account's (`user` None) for its members who have none of their own, set by the account's
owner or an admin among its readers. The composer inserts `signature_for` the sending account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Lower
from django.utils.translation import gettext as _

from crm.models import Membership
from crm.services import ServiceError
from inbox import mime, sanitize, visibility
from inbox.models import (
    AccountKind,
    MailAccount,
    MailSignature,
    MailTemplate,
    TemplateFolder,
)

NAME_LENGTH: Final = 200
SUBJECT_LENGTH: Final = 998
# Characters of HTML, after cleaning: far more than any template or signature needs, and a
# wall against pasting a whole newsletter with its images inlined.
MAX_TEMPLATE_HTML: Final = 500_000
MAX_SIGNATURE_HTML: Final = 100_000


# --- Reads ---------------------------------------------------------------------------------------


def folders_visible(*, membership: Membership) -> QuerySet[TemplateFolder]:
    """The company's folders, then the user's own, each by name."""
    return (
        TemplateFolder.objects.for_company(membership.company_id)
        .filter(Q(owner__isnull=True) | Q(owner_id=membership.user_id))
        .order_by(F("owner_id").asc(nulls_first=True), Lower("name"), "pk")
    )


def access_folder(*, membership: Membership, folder_id: object) -> TemplateFolder | None:
    """A folder the user sees (theirs or the company's); None for one that is missing or
    someone else's."""
    try:
        return folders_visible(membership=membership).filter(pk=int(str(folder_id))).first()
    except ValueError:
        return None


def templates_visible(*, membership: Membership) -> QuerySet[MailTemplate]:
    """The user's own templates and the shared ones, by folder name (no folder last), then
    by name."""
    return (
        MailTemplate.objects.for_company(membership.company_id)
        .filter(Q(owner_id=membership.user_id) | Q(shared=True))
        .select_related("folder", "owner")
        .order_by(F("folder__name").asc(nulls_last=True), Lower("name"), "pk")
    )


def access_template(*, membership: Membership, template_id: object) -> MailTemplate | None:
    """A template the user may see and use; None for one that is missing or private to
    someone else (the same answer)."""
    try:
        pk = int(str(template_id))
    except ValueError:
        return None
    return templates_visible(membership=membership).filter(pk=pk).first()


def can_edit_template(*, membership: Membership, template: MailTemplate) -> bool:
    """Its owner; for a shared one, a company admin too. (The caller read it with
    `access_template` or `templates_visible`.)"""
    if template.owner_id == membership.user_id:
        return True
    return template.shared and membership.is_admin


def can_edit_folder(*, membership: Membership, folder: TemplateFolder) -> bool:
    """One's own folder; the company's folders are the admins'."""
    if folder.owner_id is None:
        return membership.is_admin
    return folder.owner_id == membership.user_id


@dataclass(frozen=True)
class TemplateGroup:
    """A folder of the Templates page with the templates in it; `folder` None holds those in
    no folder (or in a colleague's own folder, which is not the reader's to see)."""

    folder: TemplateFolder | None
    templates: list[MailTemplate]


def templates_grouped(*, membership: Membership) -> list[TemplateGroup]:
    """The user's folders (empty ones too), each with its templates, then the rest."""
    folders = list(folders_visible(membership=membership))
    by_folder: dict[int | None, list[MailTemplate]] = {folder.pk: [] for folder in folders}
    loose: list[MailTemplate] = []
    for template in templates_visible(membership=membership):
        by_folder.get(template.folder_id, loose).append(template)
    groups = [TemplateGroup(folder, by_folder[folder.pk]) for folder in folders]
    if loose:
        groups.append(TemplateGroup(None, loose))
    return groups


# --- Template writes -----------------------------------------------------------------------------


def _clean_name(name: str, noun: str) -> str:
    clean = " ".join(name.split())
    if not clean:
        raise ServiceError(_("Give the %(noun)s a name.") % {"noun": noun}, field="name")
    if len(clean) > NAME_LENGTH:
        raise ServiceError(
            _("Keep the name under %(count)s characters.") % {"count": NAME_LENGTH}, field="name"
        )
    return clean


def _clean_body(body_html: str, limit: int) -> str:
    """The HTML cleaned; "" when nothing is left to read (an editor emptied by the user
    still holds a `<p><br></p>`)."""
    clean = sanitize.sanitize_authored_html(body_html) if body_html.strip() else ""
    if not mime.html_to_text(clean).strip() and "<img" not in clean:
        return ""
    if len(clean) > limit:
        raise ServiceError(
            _("The text is too long (%(size)s characters; at most %(limit)s).")
            % {"size": len(clean), "limit": limit},
            field="body_html",
        )
    return clean


def _editable_template(membership: Membership, template_id: object) -> MailTemplate:
    template = access_template(membership=membership, template_id=template_id)
    if template is None:
        raise ServiceError(_("No template with this id that you can see."), field="id")
    if not can_edit_template(membership=membership, template=template):
        raise ServiceError(
            _("Only its owner or an admin can change a shared template."), field="id"
        )
    return template


@transaction.atomic
def template_save(
    *,
    membership: Membership,
    template_id: int | None = None,
    name: str,
    subject: str,
    body_html: str,
    folder_id: int | None,
    shared: bool,
) -> MailTemplate:
    """Create a template (the user's own), or change one they may change. The body is
    cleaned; `folder_id` is a folder the user sees, or the one the template is in already
    (an admin changing a colleague's shared template leaves it in its owner's folder)."""
    if template_id is None:
        template = MailTemplate(company_id=membership.company_id, owner_id=membership.user_id)
    else:
        template = _editable_template(membership, template_id)
        if shared != template.shared and template.owner_id != membership.user_id:
            raise ServiceError(
                _("Only the template's owner decides whether it is shared."), field="shared"
            )
    clean_subject = mime.clean_header_text(subject)
    if len(clean_subject) > SUBJECT_LENGTH:
        raise ServiceError(_("The subject is too long."), field="subject")
    moved = folder_id is not None and folder_id != template.folder_id
    if moved and access_folder(membership=membership, folder_id=folder_id) is None:
        raise ServiceError(_("No folder with this id that you can see."), field="folder_id")
    template.name = _clean_name(name, _("template"))
    template.subject = clean_subject
    template.body_html = _clean_body(body_html, MAX_TEMPLATE_HTML)
    template.folder_id = folder_id
    template.shared = shared
    template.save()
    return template


def template_delete(*, membership: Membership, template_id: int) -> None:
    """Delete a template the user may change. Drafts made from it keep their text."""
    _editable_template(membership, template_id).delete()


# --- Folder writes -------------------------------------------------------------------------------


@transaction.atomic
def folder_save(
    *,
    membership: Membership,
    folder_id: int | None = None,
    name: str,
    company_wide: bool = False,
) -> TemplateFolder:
    """Create a folder (the user's own, or with `company_wide` one of the company's, which
    only admins make), or rename one the user may change. Names are unique per owner,
    whatever their case."""
    clean = _clean_name(name, _("folder"))
    if folder_id is None:
        if company_wide and not membership.is_admin:
            raise ServiceError(_("Only admins make folders for the whole company."), field="name")
        folder = TemplateFolder(
            company_id=membership.company_id,
            owner_id=None if company_wide else membership.user_id,
        )
    else:
        found = access_folder(membership=membership, folder_id=folder_id)
        if found is None:
            raise ServiceError(_("No folder with this id that you can see."), field="id")
        if not can_edit_folder(membership=membership, folder=found):
            raise ServiceError(_("Only admins change the company's folders."), field="id")
        folder = found
    taken = TemplateFolder.objects.for_company(membership.company_id).filter(
        owner_id=folder.owner_id, name__iexact=clean
    )
    if folder.pk is not None:
        taken = taken.exclude(pk=folder.pk)
    if taken.exists():
        raise ServiceError(_("A folder with this name exists."), field="name")
    folder.name = clean
    try:
        with transaction.atomic():
            folder.save()
    except IntegrityError:  # made at the same moment by another request
        raise ServiceError(_("A folder with this name exists."), field="name") from None
    return folder


def folder_delete(*, membership: Membership, folder_id: int) -> None:
    """Delete a folder the user may change; its templates stay, in no folder."""
    folder = access_folder(membership=membership, folder_id=folder_id)
    if folder is None:
        raise ServiceError(_("No folder with this id that you can see."), field="id")
    if not can_edit_folder(membership=membership, folder=folder):
        raise ServiceError(_("Only admins change the company's folders."), field="id")
    folder.delete()  # templates: SET_NULL


# --- Signatures ----------------------------------------------------------------------------------


def _readable_accounts(membership: Membership) -> QuerySet[MailAccount]:
    return visibility.mailbox_accounts(company=membership.company_id, user=membership.user_id)


def can_edit_team_signature(*, membership: Membership, account: MailAccount) -> bool:
    """A team account's signature: its owner or an admin (among the users who read it: the
    caller read `account` through `inbox.visibility`)."""
    if account.kind != AccountKind.TEAM:
        return False
    return account.owner_id == membership.user_id or membership.is_admin


def signature_for(*, membership: Membership, account_id: int) -> str:
    """The signature for mail the user sends from this account: their own, else the team
    account's, else "". An account whose mailbox they do not read has none."""
    rows = (
        MailSignature.objects.for_company(membership.company_id)
        .filter(
            Q(user_id=membership.user_id) | Q(user__isnull=True),
            account_id=account_id,
            account__in=_readable_accounts(membership).values("pk"),
        )
        .exclude(body_html="")
        .order_by(F("user_id").asc(nulls_last=True))
        .values_list("body_html", flat=True)
    )
    return next(iter(rows[:1]), "")


@transaction.atomic
def signature_save(
    *, membership: Membership, account_id: int, body_html: str, for_team: bool = False
) -> MailSignature | None:
    """Set the user's own signature for an account whose mailbox they read, or with
    `for_team` the team account's (its owner or an admin). An empty one is removed: mail
    from the account then gets the team's signature, or none. Returns what is stored."""
    account = _readable_accounts(membership).filter(pk=account_id).first()
    if account is None:
        raise ServiceError(_("No mailbox with this id that you can send from."), field="account_id")
    if for_team and account.kind != AccountKind.TEAM:
        raise ServiceError(
            _("Only a team mailbox has a signature for all its users."), field="for_team"
        )
    if for_team and not can_edit_team_signature(membership=membership, account=account):
        raise ServiceError(
            _("Only the mailbox's owner or an admin sets the team's signature."), field="for_team"
        )
    clean = _clean_body(body_html, MAX_SIGNATURE_HTML)
    # The team's row has no user: `user_id=None` is an IS NULL lookup.
    whose: dict[str, Any] = {
        "account": account,
        "user_id": None if for_team else membership.user_id,
    }
    rows = MailSignature.objects.for_company(membership.company_id)
    if not clean:
        rows.filter(**whose).delete()
        return None
    signature, _created = rows.update_or_create(
        company_id=membership.company_id, **whose, defaults={"body_html": clean}
    )
    return signature


@dataclass(frozen=True)
class AccountSignatures:
    """One mailbox of the Signatures page: the user's own signature there and the team's."""

    account: MailAccount
    mine: str
    team: str  # "" for a personal account, or a team account without one
    team_editable: bool

    @property
    def in_use(self) -> str:
        """What the composer inserts for this account."""
        return self.mine or self.team


def signatures_for_user(*, membership: Membership) -> list[AccountSignatures]:
    """Each mailbox the user reads (by address) with their signature and the team's."""
    accounts = list(
        _readable_accounts(membership).select_related("owner").order_by("email_address", "pk")
    )
    stored = MailSignature.objects.for_company(membership.company_id).filter(
        Q(user_id=membership.user_id) | Q(user__isnull=True),
        account_id__in=[account.pk for account in accounts],
    )
    mine: dict[int, str] = {}
    team: dict[int, str] = {}
    for signature in stored:
        (team if signature.user_id is None else mine)[signature.account_id] = signature.body_html
    return [
        AccountSignatures(
            account=account,
            mine=mine.get(account.pk, ""),
            team=team.get(account.pk, "") if account.kind == AccountKind.TEAM else "",
            team_editable=can_edit_team_signature(membership=membership, account=account),
        )
        for account in accounts
    ]
