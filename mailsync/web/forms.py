"""The forms of the Email sync pages. They parse the shape of the input; what an account may be
(a loopback-only plain connection, a reachable server, a password that signs in) is decided by
`mailsync.services`, whose `AccountError` lands on the form through `add_account_error`."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from crm.web.forms import PlainLabels
from inbox.models import (
    SHARING_BY_KIND,
    AccountKind,
    FolderRole,
    LinkMode,
    Security,
    SentCopyMode,
    Sharing,
)
from mailsync.presets import PRESETS, Preset
from mailsync.services import AccountError, ImapAccountInput

# "How far back" the first sync reaches, in days (the service takes 3 to 730).
SINCE_CHOICES: list[tuple[int, str | Promise]] = [
    (3, _("3 days")),
    (7, _("1 week")),
    (14, _("2 weeks")),
    (30, _("1 month")),
    (90, _("3 months")),
    (180, _("6 months")),
    (365, _("1 year")),
    (730, _("2 years")),
]
DEFAULT_SINCE_DAYS = 90

OTHER_PRESET = ""  # "Other (any IMAP server)": the user types the servers in

SCOPE_ALL, SCOPE_SELECTED = "all", "selected"

# AccountError keys that are not the name of a form field.
_ERROR_FIELDS = {"member_ids": "members", "sync_scope": "folders", "connection": None}


def add_account_error(
    form: forms.Form, error: AccountError, *, preset: Preset | None = None
) -> None:
    """Show each of the service's messages beside its field, or above the form when it names
    none. A failed connection also gets the provider's own advice, if the preset has any."""
    for key, message in error.errors.items():
        field = _ERROR_FIELDS.get(key, key)
        form.add_error(field if field in form.fields else None, message)
        if key == "connection" and preset is not None and preset.hint:
            form.add_error(None, f"{preset.label}: {preset.hint}")


def preset_choices() -> list[tuple[str, str]]:
    return [
        (OTHER_PRESET, str(_("Other (any IMAP server)"))),
        *((preset.key, preset.label) for preset in PRESETS.values()),
    ]


def since_choices(current: int | None = None) -> list[tuple[int, str | Promise]]:
    """The fixed steps, plus the account's own value when the API set another one."""
    choices = list(SINCE_CHOICES)
    if current is not None and current not in dict(choices):
        choices.append((current, str(_("%(days)d days") % {"days": current})))
        choices.sort()
    return choices


def folder_label(name: str, role: str) -> str:
    """`[Gmail]/Sent Mail (Sent)`: the name with its role, unless the role adds nothing."""
    if role == FolderRole.OTHER or role not in FolderRole.values:
        return name
    label = str(FolderRole(role).label)
    return name if name.casefold() == label.casefold() else f"{name} ({label})"


_ROLE_ORDER = {role: position for position, role in enumerate(FolderRole.values)}


def folder_sort_key(name: str, role: str) -> tuple[int, str]:
    """Inbox, Sent, Drafts, … first (in FolderRole's order), then the rest by name."""
    return (_ROLE_ORDER.get(role, len(_ROLE_ORDER)), name.casefold())


def _password_field(label: Any) -> forms.CharField:
    # render_value=False: a failed submit never sends the password back into the page.
    return forms.CharField(
        label=label,
        strip=False,
        max_length=1000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )


class AccountStartForm(PlainLabels, forms.Form):
    """Step 1 of adding an account: the address, from which the provider is guessed."""

    email = forms.EmailField(label=_("Email address"), max_length=320)


class AccountAddForm(PlainLabels, forms.Form):
    """Step 2: the connection settings (filled from a preset), who shares it, what syncs."""

    email = forms.EmailField(label=_("Email address"), max_length=320)
    preset = forms.ChoiceField(label=_("Provider"), required=False)
    imap_host = forms.CharField(label=_("IMAP server"), max_length=255)
    imap_port = forms.IntegerField(label=_("IMAP port"), min_value=1, max_value=65535)
    imap_security = forms.ChoiceField(label=_("IMAP security"), choices=Security.choices)
    smtp_host = forms.CharField(label=_("SMTP server"), max_length=255, required=False)
    smtp_port = forms.IntegerField(
        label=_("SMTP port"), min_value=1, max_value=65535, required=False
    )
    smtp_security = forms.ChoiceField(
        label=_("SMTP security"),
        choices=[("", _("Not set")), *Security.choices],
        required=False,
    )
    username = forms.CharField(
        label=_("Username"),
        max_length=320,
        required=False,
        help_text=_("Usually the email address itself; left empty, the address is used."),
    )
    password = _password_field(_("Password"))
    kind = forms.ChoiceField(
        label=_("Who reads it"),
        choices=[
            (AccountKind.PERSONAL, _("Personal: only you")),
            (AccountKind.TEAM, _("Team: you and the people you choose")),
        ],
        initial=AccountKind.PERSONAL,
        widget=forms.RadioSelect,
    )
    members = forms.TypedMultipleChoiceField(
        label=_("Team members"),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("For a team account. You are always a member."),
    )
    sync_since_days = forms.TypedChoiceField(
        label=_("How far back"),
        coerce=int,
        choices=SINCE_CHOICES,
        initial=DEFAULT_SINCE_DAYS,
        help_text=_("The first sync downloads the mail of this period."),
    )

    def __init__(self, *args: Any, people: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["preset"].choices = preset_choices()  # type: ignore[attr-defined]
        self.fields["members"].choices = people  # type: ignore[attr-defined]

    def account_input(self) -> ImapAccountInput:
        data = self.cleaned_data
        team = data["kind"] == AccountKind.TEAM
        return ImapAccountInput(
            email_address=data["email"],
            imap_host=data["imap_host"].strip(),
            imap_port=data["imap_port"],
            imap_security=data["imap_security"],
            username=data["username"].strip(),
            password=data["password"],
            smtp_host=data["smtp_host"].strip(),
            smtp_port=data["smtp_port"],
            smtp_security=data["smtp_security"],
            kind=data["kind"],
            member_ids=tuple(data["members"]) if team else (),
            # Folders are chosen on the account's page, once they are known.
            sync_all_folders=True,
            sync_since_days=data["sync_since_days"],
        )


# What the two-way sync box does (A5), in the words of the page.
TWO_WAY_HELP = _(
    "Archiving, deleting and marking read or unread in the CRM is done in your mailbox too, a "
    "few seconds later (while you can still undo it), and what you do in your mail app comes "
    "back. The mailbox's Archive and Trash folders sync as well."
)


class AccountSyncForm(PlainLabels, forms.Form):
    """What an account syncs (A4), whether CRM changes reach the mailbox (two-way sync, A5)
    and, for a team account, who shares it (A2)."""

    sync_scope = forms.ChoiceField(
        label=_("Which mail"),
        choices=[
            (SCOPE_ALL, _("All mail (except Spam and Trash)")),
            (SCOPE_SELECTED, _("Selected folders")),
        ],
        widget=forms.RadioSelect,
    )
    folders = forms.MultipleChoiceField(
        label=_("Folders"), required=False, widget=forms.CheckboxSelectMultiple
    )
    sync_since_days = forms.TypedChoiceField(
        label=_("How far back"),
        coerce=int,
        help_text=_("Reaching further back downloads the older mail on the next sync."),
    )
    members = forms.TypedMultipleChoiceField(
        label=_("Team members"),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The owner is always a member."),
    )
    two_way_sync = forms.BooleanField(
        label=_("Two-way sync"),
        required=False,
        help_text=TWO_WAY_HELP,
    )
    sent_copy = forms.ChoiceField(
        label=_("Copies of sent mail"),
        choices=SentCopyMode.choices,
        required=False,  # absent: unchanged
        help_text=_(
            "Gmail and Microsoft 365 file what you send in Sent themselves; other servers need "
            "the CRM to save a copy there. Leave it to decide by provider unless sent mail shows "
            "twice or not at all."
        ),
    )

    def __init__(
        self,
        *args: Any,
        folders: list[tuple[str, str]],
        since_days: int,
        people: list[tuple[int, str]] | None,
        **kwargs: Any,
    ) -> None:
        """`people`: the choices of a team account's members; None for a personal account."""
        super().__init__(*args, **kwargs)
        self.fields["folders"].choices = folders  # type: ignore[attr-defined]
        self.fields["sync_since_days"].choices = since_choices(since_days)  # type: ignore[attr-defined]
        if people is None:
            del self.fields["members"]
        else:
            self.fields["members"].choices = people  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if cleaned and cleaned.get("sync_scope") == SCOPE_SELECTED and not cleaned.get("folders"):
            self.add_error("folders", _("Tick at least one folder, or choose All mail."))
        return cleaned


# What each sharing means, in one line (D1, D2, D4).
SHARING_EXPLAINED: dict[str, str | Promise] = {
    Sharing.SHARED: _(
        "Shared: everyone who may see a linked person, deal or lead sees the conversation there "
        "(never in their own mailbox)."
    ),
    Sharing.PRIVATE: _("Private: only you see it, on linked items too; not even admins."),
    Sharing.TEAM: _("Team only: only this account's members see it, on linked items too."),
}


class AccountConversationsForm(PlainLabels, forms.Form):
    """What new conversations of an account get: their sharing (D3) and linking mode (C2).

    The radios offer only the sharing choices of the account's kind; the field itself takes any
    sharing, so a value the kind does not offer reaches `mailsync.services`, which says why."""

    default_sharing = forms.ChoiceField(
        label=_("Sharing of new conversations"),
        choices=Sharing.choices,
        widget=forms.RadioSelect,
        help_text=_("Existing conversations keep theirs; apply it to them below."),
    )
    link_mode = forms.ChoiceField(
        label=_("Linking"),
        choices=[
            (LinkMode.AUTOMATIC, _("Automatic: persons and their open deal or lead")),
            (LinkMode.MANUAL, _("Manual: persons only, you pick the deal")),
        ],
        widget=forms.RadioSelect,
    )

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the widget's choices: the field still validates against every sharing.
        self.fields["default_sharing"].widget.choices = [
            (choice.value, SHARING_EXPLAINED[choice]) for choice in SHARING_BY_KIND[kind]
        ]


class ReconnectForm(PlainLabels, forms.Form):
    password = _password_field(_("Password (or app password)"))
