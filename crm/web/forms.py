"""The forms of the web pages. They parse and check the shape of input; the rules (a team
name is unique, a company keeps an admin) live in crm.services, whose ServiceError lands on
the form through `add_service_error`."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.utils.translation import gettext_lazy as _

from crm import timezones
from crm.access import ItemKind, Visibility
from crm.models import Role, User
from crm.plans import PLAN_CHOICES
from crm.services import ServiceError


def add_service_error(form: forms.Form, error: ServiceError) -> None:
    """Show a service's refusal beside its field, or above the form when it names none."""
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


class PlainLabels:
    """Labels without Django's trailing colon: they sit above their fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class SignInForm(PlainLabels, AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        # Django's text warns that both fields may be case-sensitive; addresses are not here.
        "invalid_login": _("The email address or the password is wrong."),
    }

    def clean_username(self) -> str:
        # Addresses are stored lower-cased; people type them as they like.
        username: str = self.cleaned_data["username"]
        return username.strip().lower()


class PasswordResetRequestForm(PlainLabels, PasswordResetForm):
    pass


class NewPasswordForm(PlainLabels, SetPasswordForm):  # type: ignore[type-arg]
    pass


class CompanySwitchForm(forms.Form):
    company_id = forms.IntegerField()


class CompanyForm(PlainLabels, forms.Form):
    name = forms.CharField(label=_("Company name"), max_length=200)
    plan = forms.ChoiceField(label=_("Plan"), choices=PLAN_CHOICES, widget=forms.RadioSelect)


class InvitationForm(PlainLabels, forms.Form):
    email = forms.EmailField(label=_("Email address"))
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.REGULAR)


class RoleForm(PlainLabels, forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class TeamForm(PlainLabels, forms.Form):
    name = forms.CharField(label=_("Team name"), max_length=120)


class TeamMembersForm(PlainLabels, forms.Form):
    members = forms.TypedMultipleChoiceField(
        label=_("Members"), coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, people: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["members"].choices = people  # type: ignore[attr-defined]


class JoinForm(PlainLabels, forms.Form):
    """A new user joining through an invitation: the address is the invited one."""

    name = forms.CharField(label=_("Your name"), max_length=200)
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password_again = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if cleaned and cleaned.get("password") != cleaned.get("password_again"):
            self.add_error("password_again", _("The two passwords differ."))
        return cleaned


class VisibilityDefaultsForm(PlainLabels, forms.Form):
    """One `visible_to` choice per item kind: what new items get unless their creator picks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for kind, label in ItemKind.choices:
            self.fields[kind] = forms.TypedChoiceField(
                label=label, choices=Visibility.choices, coerce=int
            )


class PreferencesForm(PlainLabels, forms.Form):
    """Personal preferences: the time zone (a select grouped by region, places labelled with
    their offset now), what email links open (B8), and tracking (E2, E3). The service checks
    them again."""

    timezone = forms.ChoiceField(
        label=_("Time zone"),
        help_text=_(
            "Times in the CRM are shown in it, and “send later” reads the time you pick in it."
        ),
    )
    email_links = forms.ChoiceField(
        label=_("Email links"),
        choices=list(User._meta.get_field("email_links").flatchoices),
        widget=forms.RadioSelect,
        help_text=_("What happens when you click an email address in the CRM."),
    )
    # E3 and E2: where the composer's tracking switches start, and the daily email.
    track_opens_default = forms.BooleanField(
        label=_("Track opens by default"),
        required=False,
        help_text=_(
            "New emails start with open tracking on: a tiny image tells you when the message "
            "is displayed. You can still turn it off for one email."
        ),
    )
    track_links_default = forms.BooleanField(
        label=_("Track link clicks by default"),
        required=False,
        help_text=_("New emails start with link tracking on: you see which link was clicked."),
    )
    tracking_digest = forms.BooleanField(
        label=_("Email me a daily digest of opens and clicks"),
        required=False,
        help_text=_(
            "Once a day, in your morning, what you have not seen yet in the notifications."
        ),
    )

    def __init__(self, *args: Any, current_timezone: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = timezones.choices(  # type: ignore[attr-defined]
            at=datetime.datetime.now(datetime.UTC), keep=current_timezone
        )
