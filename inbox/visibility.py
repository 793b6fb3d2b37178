"""Who may see which conversations (D1 to D4): the one module that decides it. Every reader of
threads and messages (inbox pages, detail views, the API, search, exports, notifications, AI)
goes through these querysets; filtering happens in SQL.

Today's rule is the mailbox rule: a user sees every conversation of the accounts they own
(personal) or are a member of (team), and nothing else. The linking and visibility issue adds
shared conversations on the detail views of linked items, team-only and private sharing, and
the participant rule; they belong here and nowhere else."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from crm.models import Company, User
from inbox.models import MailAccount, MailAccountMember, MailMessage, MailThread, MailThreadMessage


def mailbox_accounts(*, company: Company | int, user: User | int) -> QuerySet[MailAccount]:
    """The connected accounts whose mailbox the user reads: owned, or a member of."""
    user_id = user if isinstance(user, int) else user.pk
    member = MailAccountMember.objects.for_company(company).filter(
        account_id=OuterRef("pk"), user_id=user_id
    )
    return MailAccount.objects.for_company(company).filter(
        Q(owner_id=user_id) | Exists(member), removed_at__isnull=True
    )


def visible_threads(*, company: Company | int, user: User | int) -> QuerySet[MailThread]:
    """The conversations the user may see."""
    return MailThread.objects.for_company(company).filter(
        account__in=mailbox_accounts(company=company, user=user).values("pk")
    )


def visible_messages(*, company: Company | int, user: User | int) -> QuerySet[MailMessage]:
    """The stored messages the user may see: those in a conversation they may see."""
    memberships = MailThreadMessage.objects.for_company(company).filter(
        message_id=OuterRef("pk"),
        thread__in=visible_threads(company=company, user=user).values("pk"),
    )
    return MailMessage.objects.for_company(company).filter(Exists(memberships))
