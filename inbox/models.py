"""The mail domain as the CRM sees it (DESIGN.md, Mail data model; NOTES-TRANCHE-1, Mail model).

- `MailAccount`: a connected mailbox, personal (one owner) or team (members), with its
  connection settings; secrets only encrypted (`crm.encryption`).
- `MailFolder`: a folder (or Gmail label) of an account, with its role and whether it syncs.
- `MailMessage`: one RFC 822 message, stored once per company under its dedupe key (normalized
  Message-ID, or a content hash). Its raw bytes live in a Django storage backend.
- `MailMessageLocation`: where an account holds a message: (account, folder, provider id). The
  message stays while any location holds it.
- `MailThread`: a conversation in one account. The same message received by two accounts is
  one `MailMessage` in two threads (`MailThreadMessage`), so each account's copy keeps its own
  visibility, links, read and archive state.
- `MailThreadKey`: the Message-IDs (and provider thread ids, subject keys) a thread answers to,
  so threading a new message is one indexed lookup per batch.
- `MailParticipant`, `MailAttachment`: a message's parties and files.

Every table is tenant-owned: `company_id` leads each index (crm.tenancy)."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _

from crm.models import Label, User
from crm.tenancy import TenantModel


class AccountKind(models.TextChoices):
    PERSONAL = "personal", _("Personal")
    TEAM = "team", _("Team")


class Provider(models.TextChoices):
    IMAP = "imap", _("IMAP / SMTP")
    GMAIL = "gmail", _("Gmail")
    GRAPH = "graph", _("Microsoft 365")
    EWS = "ews", _("Exchange")


class Security(models.TextChoices):
    SSL = "ssl", _("SSL/TLS")
    STARTTLS = "starttls", _("STARTTLS")
    NONE = "none", _("None (loopback only)")


class Sharing(models.TextChoices):
    """Who sees a conversation besides its mailbox's users (D1 to D4; `inbox.visibility`)."""

    SHARED = "shared", _("Shared")  # on the linked items, to whoever may see them
    PRIVATE = "private", _("Private")  # the owner only (personal accounts)
    TEAM = "team", _("Team only")  # the team account's members only, on items too


# The sharing choices each kind of account offers (D3).
SHARING_BY_KIND = {
    "personal": (Sharing.SHARED, Sharing.PRIVATE),
    "team": (Sharing.SHARED, Sharing.TEAM),
}


class LinkMode(models.TextChoices):
    """C2: automatic links a conversation to its persons and their open deal (or lead);
    manual links persons only, and the user picks the deal, lead or project."""

    AUTOMATIC = "automatic", _("Automatic")
    MANUAL = "manual", _("Manual")


class SentCopyMode(models.TextChoices):
    """Who puts a sent message into the account's Sent folder. Gmail and Microsoft 365 file
    what their SMTP servers accept themselves, so a copy of ours would show twice there;
    other servers leave it to the mail client."""

    AUTO = "auto", _("Decide by provider")
    APPEND = "append", _("Save a copy in Sent")
    SERVER = "server", _("The server saves it")


class MailAccount(TenantModel):
    """A connected mailbox. The password (or OAuth tokens) is kept only encrypted, in
    `secret_encrypted`, and never leaves `mailsync` in clear."""

    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", db_index=False)
    kind = models.CharField(
        max_length=16, choices=AccountKind.choices, default=AccountKind.PERSONAL
    )
    provider = models.CharField(max_length=16, choices=Provider.choices, default=Provider.IMAP)
    email_address = models.CharField(_("email address"), max_length=320)
    display_name = models.CharField(_("name"), max_length=200, blank=True)
    members: models.ManyToManyField[User, MailAccountMember] = models.ManyToManyField(
        User, through="MailAccountMember", related_name="+"
    )

    imap_host = models.CharField(max_length=255, blank=True)
    imap_port = models.PositiveIntegerField(null=True, blank=True)
    imap_security = models.CharField(max_length=16, choices=Security.choices, blank=True)
    smtp_host = models.CharField(max_length=255, blank=True)
    smtp_port = models.PositiveIntegerField(null=True, blank=True)
    smtp_security = models.CharField(max_length=16, choices=Security.choices, blank=True)
    username = models.CharField(max_length=320, blank=True)
    secret_encrypted = models.TextField(blank=True)
    # Attachment limit for sending, in bytes (Gmail 25 MB, Outlook 20 MB, IMAP configurable).
    send_size_limit = models.PositiveBigIntegerField(default=25 * 1024 * 1024)

    # A4: all mail, or only the folders marked `selected`; how far back the first sync reaches.
    sync_all_folders = models.BooleanField(default=True)
    sync_since_days = models.PositiveIntegerField(default=90)
    # D3: the sharing new conversations get; C2: whether they are linked to deals and leads.
    default_sharing = models.CharField(
        max_length=8, choices=Sharing.choices, default=Sharing.SHARED
    )
    link_mode = models.CharField(
        max_length=16, choices=LinkMode.choices, default=LinkMode.AUTOMATIC
    )
    # A5: archive, delete and read / unread in the CRM are carried out in the mailbox too.
    two_way_sync = models.BooleanField(default=False)
    # B4: who files sent mail into the Sent folder (the outbox).
    sent_copy = models.CharField(
        max_length=8, choices=SentCopyMode.choices, default=SentCopyMode.AUTO
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Disconnected accounts keep nothing syncing; their mail goes with the account row.
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "company",
                "email_address",
                "provider",
                condition=models.Q(removed_at__isnull=True),
                name="mail_account_unique_address",
            ),
        ]
        indexes = [models.Index(fields=["company", "owner"], name="mail_account_owner")]

    def __str__(self) -> str:
        return self.email_address


class MailAccountMember(TenantModel):
    """A user who reads and answers a team account's mail (A2)."""

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, db_index=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+", db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "account", "user"], name="mail_account_member_unique"
            ),
        ]
        indexes = [models.Index(fields=["company", "user"], name="mail_account_member_user")]


class FolderRole(models.TextChoices):
    INBOX = "inbox", _("Inbox")
    SENT = "sent", _("Sent")
    DRAFTS = "drafts", _("Drafts")
    ARCHIVE = "archive", _("Archive")
    TRASH = "trash", _("Trash")
    JUNK = "junk", _("Spam")
    ALL = "all", _("All mail")
    OTHER = "other", _("Folder")


class MailFolder(TenantModel):
    """A folder of an account as the provider names it (`name`, the full path)."""

    account = models.ForeignKey(
        MailAccount, on_delete=models.CASCADE, related_name="folders", db_index=False
    )
    name = models.CharField(max_length=1000)
    role = models.CharField(max_length=16, choices=FolderRole.choices, default=FolderRole.OTHER)
    # Chosen for sync when the account syncs selected folders only (A4).
    selected = models.BooleanField(default=False)
    # Gone on the server (deleted or renamed away): kept for the record, never synced.
    removed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "account", "name"], name="mail_folder_unique_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class MailMessage(TenantModel):
    """One stored RFC 822 message. Parse results are columns; the raw bytes are in storage at
    `raw_path`, so any parse can be redone."""

    key = models.CharField(max_length=998)  # mailsync.pipeline.types.ParsedMessage.key
    message_id = models.CharField(max_length=998, blank=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = ArrayField(models.CharField(max_length=998), default=list, blank=True)
    subject = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)  # the Date header
    received_at = models.DateTimeField()  # the provider's arrival time, else when we stored it
    from_address = models.CharField(max_length=320, blank=True)
    from_name = models.CharField(max_length=320, blank=True)
    snippet = models.CharField(max_length=225, blank=True)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)  # the original, unsanitized: display sanitizes
    has_attachments = models.BooleanField(default=False)
    is_bulk = models.BooleanField(default=False)  # List-Id, Precedence: bulk, Auto-Submitted
    size = models.PositiveBigIntegerField(default=0)
    raw_path = models.CharField(max_length=255, blank=True)
    parse_error = models.CharField(max_length=500, blank=True)  # "" when it parsed
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "key"], name="mail_message_key"),
        ]
        indexes = [
            models.Index(
                fields=["company", "parse_error"],
                condition=~models.Q(parse_error=""),
                name="mail_message_malformed",
            ),
        ]

    def __str__(self) -> str:
        return self.subject or self.key


class ParticipantRole(models.TextChoices):
    FROM = "from"
    SENDER = "sender"
    REPLY_TO = "reply_to"
    TO = "to"
    CC = "cc"
    BCC = "bcc"


class MailParticipant(TenantModel):
    """A party of a message; `person_id` is the CRM person the address belongs to (C1)."""

    message = models.ForeignKey(
        MailMessage, on_delete=models.CASCADE, related_name="participants", db_index=False
    )
    role = models.CharField(max_length=16, choices=ParticipantRole.choices)
    address = models.CharField(max_length=320)
    name = models.CharField(max_length=320, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    person = models.ForeignKey(
        "contacts.Person",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )

    class Meta:
        ordering = ["position"]
        indexes = [
            models.Index(fields=["company", "message"], name="mail_participant_message"),
            models.Index(fields=["company", "address"], name="mail_participant_address"),
            models.Index(
                fields=["company", "person"],
                condition=models.Q(person__isnull=False),
                name="mail_participant_person",
            ),
        ]


class MailAttachment(TenantModel):
    """A file of a message. Its bytes are read from the raw message on download (`part_path`)."""

    message = models.ForeignKey(
        MailMessage, on_delete=models.CASCADE, related_name="attachments", db_index=False
    )
    filename = models.CharField(max_length=1000)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=16)  # mailsync.pipeline.types.AttachmentKind
    content_id = models.CharField(max_length=998, blank=True)
    part_path = models.CharField(max_length=64)

    class Meta:
        indexes = [models.Index(fields=["company", "message"], name="mail_attachment_message")]


class MailThread(TenantModel):
    """A conversation in one account, with that account's state of it."""

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, db_index=False)
    subject = models.TextField(blank=True)
    snippet = models.CharField(max_length=225, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    first_message_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    has_attachments = models.BooleanField(default=False)
    # At least one message of the thread is unread in the mailbox (no \Seen).
    is_unread = models.BooleanField(default=False)
    # Folder roles the thread's messages are in (inbox, sent, archive, ...), kept by the store.
    folder_roles = ArrayField(models.CharField(max_length=16), default=list, blank=True)
    folder_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    archived = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    # The earliest message: copies of one conversation in several accounts share it, so an
    # item's Email tab shows the conversation once.
    root_message_id = models.BigIntegerField(null=True, blank=True)

    # Visibility (D): set from the account's default when the thread is made.
    sharing = models.CharField(max_length=8, choices=Sharing.choices, default=Sharing.SHARED)
    # Every sender of the thread matches a blocked address (C5): shown nowhere, linked to nothing.
    blocked = models.BooleanField(default=False)

    # Links (C): the persons taking part (automatic, from the participants of its messages that
    # are not bulk mail), and at most one deal, lead or project. `link_manual`: the user chose
    # the deal / lead / project (or none); the automatic rules leave it alone.
    person_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    deal = models.ForeignKey(
        "sales.Deal",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    lead = models.ForeignKey(
        "sales.Lead",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    project = models.ForeignKey(
        "sales.Project",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    link_manual = models.BooleanField(default=False)
    # B2: the user's labels on this account's copy of the conversation.
    labels: models.ManyToManyField[Label, MailThreadLabel] = models.ManyToManyField(
        Label, through="MailThreadLabel", related_name="+"
    )
    # E2: the latest open and click by a recipient of a tracked message of ours in it (the
    # eye and cursor icons of the lists), kept by `inbox.tracking`.
    tracked_opened_at = models.DateTimeField(null=True, blank=True)
    tracked_clicked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["company", "account", "-last_message_at", "-id"],
                name="mail_thread_account_recent",
            ),
            models.Index(
                fields=["company", "deal", "-last_message_at"],
                condition=models.Q(deal__isnull=False),
                name="mail_thread_deal",
            ),
            models.Index(
                fields=["company", "lead", "-last_message_at"],
                condition=models.Q(lead__isnull=False),
                name="mail_thread_lead",
            ),
            models.Index(
                fields=["company", "project", "-last_message_at"],
                condition=models.Q(project__isnull=False),
                name="mail_thread_project",
            ),
            models.Index(fields=["company", "root_message_id"], name="mail_thread_root"),
        ]

    def __str__(self) -> str:
        return self.subject


class MailThreadPerson(TenantModel):
    """A person taking part in a thread: `MailThread.person_ids` as rows, kept with it by
    `inbox.linking`, so an item's Email tab finds its conversations through a b-tree index on
    integers (row-level security lets the planner use those; not a GIN index on the array,
    whose operator is not leakproof)."""

    thread = models.ForeignKey(MailThread, on_delete=models.CASCADE, db_index=False)
    person = models.ForeignKey(
        "contacts.Person", on_delete=models.CASCADE, related_name="+", db_index=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "thread", "person"], name="mail_thread_person_unique"
            ),
        ]
        indexes = [models.Index(fields=["company", "person"], name="mail_thread_person_person")]


class MailThreadMessage(TenantModel):
    """A message as part of one account's thread."""

    thread = models.ForeignKey(
        MailThread, on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    message = models.ForeignKey(MailMessage, on_delete=models.CASCADE, db_index=False)
    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, db_index=False)
    is_unread = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "account", "message"], name="mail_thread_message_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["company", "thread"], name="mail_thread_message_thread"),
            models.Index(fields=["company", "message"], name="mail_thread_message_message"),
        ]


class MailThreadKey(TenantModel):
    """A key a thread of an account answers to: a Message-ID it holds or references
    ("<id>"), a provider thread id ("provider:<id>") or a subject key ("subject:..."), with the
    time of its latest message (subject keys only join within a window)."""

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, db_index=False)
    key = models.CharField(max_length=998)
    thread = models.ForeignKey(MailThread, on_delete=models.CASCADE, db_index=False)
    last_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "account", "key"], name="mail_thread_key_unique"
            ),
        ]
        indexes = [models.Index(fields=["company", "thread"], name="mail_thread_key_thread")]


class MailMessageLocation(TenantModel):
    """Where an account holds a message: one row per (account, folder, provider id), e.g.
    IMAP `uidvalidity:uid`, a Gmail message id, a Graph ImmutableId, an EWS ItemId."""

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, db_index=False)
    folder = models.ForeignKey(MailFolder, on_delete=models.CASCADE, db_index=False)
    provider_id = models.CharField(max_length=512)
    message = models.ForeignKey(MailMessage, on_delete=models.CASCADE, db_index=False)
    # IMAP UID within the folder's current UIDVALIDITY (0 for providers without UIDs).
    uid = models.BigIntegerField(default=0)
    flags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "folder", "provider_id"], name="mail_location_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["company", "folder", "uid"], name="mail_location_folder_uid"),
            models.Index(fields=["company", "message"], name="mail_location_message"),
            models.Index(fields=["company", "account", "message"], name="mail_location_account"),
        ]


class BlockedAddress(TenantModel):
    """C5: an address (`name@example.com`) or a whole domain (`@example.com`) whose mail is
    hidden: company-wide (`user` empty, set by admins) or for one user's accounts. A
    conversation is hidden when every sender of it matches (as Pipedrive screens it); its
    messages stay stored, so removing the block shows them again without a re-fetch."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="+", db_index=False
    )
    value = models.CharField(max_length=320)  # normalized: lower-case, IDNA domain
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["value"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "user", "value"],
                name="blocked_address_unique",
                nulls_distinct=False,
            ),
        ]
        indexes = [models.Index(fields=["company", "value"], name="blocked_address_value")]

    def __str__(self) -> str:
        return self.value

    @property
    def is_domain(self) -> bool:
        return self.value.startswith("@")


class MailThreadLabel(TenantModel):
    """A label (`crm.Label` of kind mail_thread) on a conversation (B2)."""

    thread = models.ForeignKey(MailThread, on_delete=models.CASCADE, db_index=False)
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="+", db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "thread", "label"], name="mail_thread_label_unique"
            ),
        ]
        indexes = [models.Index(fields=["company", "label"], name="mail_thread_label_label")]


class MailView(TenantModel):
    """A user's saved view of the Sales Inbox (B2): a folder and a query in the search language
    (`inbox.mailquery`: filters such as `is:unread label:Hot has:attachment` and free text)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(_("name"), max_length=100)
    folder = models.CharField(max_length=64, default="inbox")
    query = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                "company", "user", models.functions.Lower("name"), name="mail_view_name_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class MailCounter(TenantModel):
    """Conversation counts of one account kept in step by statement triggers on
    `inbox_mailthread` (migration 0004), so the folder list never counts rows: `key` is
    "inbox" (in an inbox folder, not archived) or "folder:<id>" (a synced folder); threads that
    are deleted or blocked are in no count. `account_id` is not a foreign key: the triggers
    still write while Django deletes an account's rows, and nobody reads a removed account's
    counts."""

    account_id = models.BigIntegerField()
    key = models.CharField(max_length=40)
    unread = models.IntegerField(default=0)
    total = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "account_id", "key"], name="mail_counter_unique"
            ),
        ]


class ActionKind(models.TextChoices):
    """What the CRM asks the mailbox to do (A5): archive (leave the inbox), back to the inbox,
    delete (to the trash), restore (out of the trash), mark read, mark unread."""

    ARCHIVE = "archive", _("Archive")
    UNARCHIVE = "unarchive", _("Move to inbox")
    DELETE = "delete", _("Delete")
    RESTORE = "restore", _("Restore")
    READ = "read", _("Mark as read")
    UNREAD = "unread", _("Mark as unread")


class ActionState(models.TextChoices):
    PENDING = "pending", _("Waiting")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")  # undone before it ran


class MailAction(TenantModel):
    """An outbox of provider-side changes (A5; NOTES: inbox writes rows, mailsync executes them
    through the provider interface). Written in the same transaction as the local change, only
    for accounts with two-way sync on; runs after `run_after` (the undo window), so an undo
    inside the window cancels it instead of undoing it on the server. `message_ids` are the
    thread's messages when it was asked, so a later merge cannot widen it."""

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, db_index=False)
    thread = models.ForeignKey(
        MailThread, on_delete=models.SET_NULL, null=True, blank=True, db_index=False
    )
    kind = models.CharField(max_length=16, choices=ActionKind.choices)
    message_ids = ArrayField(models.BigIntegerField(), default=list)
    state = models.CharField(
        max_length=16, choices=ActionState.choices, default=ActionState.PENDING
    )
    run_after = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["company", "run_after"],
                condition=models.Q(state="pending"),
                name="mail_action_pending",
            ),
            models.Index(fields=["company", "thread"], name="mail_action_thread"),
        ]


class RemoteImagesAllowed(TenantModel):
    """A user's choice to load remote images (through our image proxy) for one message, or for
    every message from one sender (`sender`, a normalized address)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+", db_index=False)
    sender = models.CharField(max_length=320, blank=True)
    message = models.ForeignKey(
        MailMessage, on_delete=models.CASCADE, null=True, blank=True, db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "user", "sender", "message"],
                name="remote_images_unique",
                nulls_distinct=False,
            ),
        ]


# --- The outbox (B4, G1, G2; docs/decisions/0012-outbox.md) ------------------------------------


class OutboundState(models.TextChoices):
    QUEUED = "queued", _("Queued")  # waiting for `not_before` (undo window, send later, retry)
    SENDING = "sending", _("Sending")  # handed to the server: DATA may be under way
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Not sent")  # refused for good: `last_error` says why; edit and retry
    UNCERTAIN = "uncertain", _("Maybe sent")  # the handover broke off: never resent silently
    CANCELLED = "cancelled", _("Cancelled")  # undone before it left


class SentCopyState(models.TextChoices):
    PENDING = "pending", _("To save")
    SAVED = "saved", _("Saved in Sent")
    BY_SERVER = "by_server", _("Saved by the server")
    NOT_SAVED = "not_saved", _("Not saved")  # no Sent folder, or the server refused it


class MailOutbound(TenantModel):
    """A message on its way out: the outbox (DESIGN.md, Sending). Written with its
        `MailMessage` (final Message-ID, raw bytes stored, parties, files) in the transaction of
        the user's action; `mailsync.outbox` delivers it and records what happened. The message
        joins a conversation of its account once the server accepted it (as the sync of the Sent
        folder would file it; the same message, by its key, when that sync finds it).

        Nothing here is sent twice: the state becomes `sending` (committed) before the server is
        handed the message's end; a worker lost after that leaves it `sending`, which the sweeper
        turns `uncertain`, then settles by looking for the Message-ID in the Sent folder or asks
        the user (`last_error` in plain words). `not_before` is when it may go (the undo window,
        send later, a retry's backoff); for an uncertain one, when to look for it again (None: the
    user decides); for a sent one not yet filed into Sent, when to try that again."""

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, db_index=False)
    message = models.ForeignKey(
        MailMessage, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    state = models.CharField(
        max_length=16, choices=OutboundState.choices, default=OutboundState.QUEUED
    )
    not_before = models.DateTimeField(null=True, blank=True)  # None: waits for the user
    send_at = models.DateTimeField(null=True, blank=True)  # send later: the chosen time
    undo_until = models.DateTimeField(null=True, blank=True)  # undo send: the window's end
    # Our token, also in the Message-ID (`<token.outbox@domain>`): tracking finds it by this.
    token = models.CharField(max_length=64)
    # The SMTP envelope's recipients (to, cc and bcc once each, as written, IDNA domains).
    envelope_to = ArrayField(models.CharField(max_length=320), default=list)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    error_kind = models.CharField(max_length=16, blank=True)  # mailsync's ErrorKind, or ""
    last_error = models.TextField(blank=True)  # plain words for the user
    failed_recipients = ArrayField(models.CharField(max_length=320), default=list, blank=True)
    server_reply = models.CharField(max_length=500, blank=True)  # the SMTP server's last answer
    sent_at = models.DateTimeField(null=True, blank=True)
    # After the server took it: filed into its conversation and the Sent folder (or not).
    finished_at = models.DateTimeField(null=True, blank=True)
    sent_copy = models.CharField(max_length=16, choices=SentCopyState.choices, blank=True)
    sent_copy_tries = models.PositiveSmallIntegerField(default=0)
    uncertain_checks = models.PositiveSmallIntegerField(default=0)

    reply_to_message = models.ForeignKey(
        MailMessage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # Links chosen when sending: applied to the conversation (by hand: automatic rules leave it).
    deal = models.ForeignKey(
        "sales.Deal",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    lead = models.ForeignKey(
        "sales.Lead",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    project = models.ForeignKey(
        "sales.Project",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    person = models.ForeignKey(
        "contacts.Person",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # Tracking (E1, E2): asked for at send time. `tracked_links` holds the addresses of the
    # links the sent HTML points through `/t/c/<token>/<n>/<sig>` (n is the index here): the
    # redirect goes to what is stored, never to anything taken from the request.
    track_opens = models.BooleanField(default=False)
    track_links = models.BooleanField(default=False)
    tracked_links = ArrayField(models.TextField(), default=list, blank=True)
    # The bytes handed to the server when they differ from the message's (`raw_path`): a
    # tracked message goes out with its marks, while the copy we keep, show and file in Sent
    # has none, so the sender reading it (here or in their mail app) is never an open.
    delivery_raw_path = models.CharField(max_length=500, blank=True)
    # What the recipients did, kept by `inbox.tracking` as events are recorded: the first
    # open and click by a person (not a proxy, a scanner or the sender), and the counts.
    opened_at = models.DateTimeField(null=True, blank=True)
    open_count = models.PositiveIntegerField(default=0)
    machine_open_count = models.PositiveIntegerField(default=0)
    clicked_at = models.DateTimeField(null=True, blank=True)
    click_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "message"], name="mail_outbound_message"),
        ]
        indexes = [
            # A worker's next message of an account.
            models.Index(
                fields=["company", "account", "not_before", "id"],
                condition=models.Q(state="queued"),
                name="mail_outbound_queued",
            ),
            # The sweeper's work: due, in flight, to settle, to finish.
            models.Index(
                fields=["company", "not_before"],
                condition=models.Q(state__in=["queued", "sending", "uncertain"])
                | models.Q(state="sent", finished_at__isnull=True),
                name="mail_outbound_open",
            ),
            models.Index(fields=["company", "token"], name="mail_outbound_token"),
            # The tracking endpoints' door (`inbox_tracking_token`): a hit names a token only.
            models.Index(
                fields=["token"],
                condition=models.Q(track_opens=True) | models.Q(track_links=True),
                name="mail_outbound_tracking_token",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.state}: {self.message_id}"


# --- Tracking (E1, E2, E3) ----------------------------------------------------------------------


class TrackingKind(models.TextChoices):
    OPEN = "open", _("Opened")
    CLICK = "click", _("Clicked")


class TrackingSource(models.TextChoices):
    """Who an event is from, as far as it can be told (`tracking.classify`)."""

    PERSON = "person", _("Recipient")
    MACHINE = "machine", _("Machine open")  # image proxies and privacy prefetchers
    SCANNER = "scanner", _("Link scanner")  # security scanners following links on delivery
    SENDER = "sender", _("You")  # the sender's own open


class MailTrackingEvent(TenantModel):
    """One open or click of a tracked message, recorded once (`event_key`: the hit's id in the
    buffer it waited in) from the tracking endpoints' buffer by the flush worker. Who may see
    it is who may see the conversation (`inbox.visibility`)."""

    outbound = models.ForeignKey(MailOutbound, on_delete=models.CASCADE, db_index=False)
    message = models.ForeignKey(
        MailMessage, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=8, choices=TrackingKind.choices)
    link_number = models.PositiveIntegerField(null=True, blank=True)
    url = models.TextField(blank=True)  # the link's address, for a click
    recipient = models.CharField(max_length=320, blank=True)  # per-recipient copies only
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    client = models.CharField(max_length=64, blank=True)  # "Gmail", "Apple Mail", "Outlook"
    device = models.CharField(max_length=16, blank=True)  # desktop, mobile, tablet or ""
    source = models.CharField(max_length=16, choices=TrackingSource.choices)
    source_detail = models.CharField(max_length=128, blank=True)  # "Apple Mail Privacy …"
    event_key = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "event_key"], name="mail_tracking_event_key"
            ),
        ]
        indexes = [
            models.Index(
                fields=["company", "message", "occurred_at"], name="mail_tracking_message"
            ),
            models.Index(
                fields=["company", "outbound", "occurred_at"], name="mail_tracking_outbound"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.message_id} at {self.occurred_at}"


# --- Composing: templates, signatures, drafts (B4, B5, B6) --------------------------------------


class TemplateFolder(TenantModel):
    """A folder of email templates: the owner's own, or the company's (`owner` None), which
    every user sees and admins keep."""

    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "company",
                "owner",
                models.functions.Lower("name"),
                name="mail_template_folder_name",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return self.name


class MailTemplate(TenantModel):
    """An email template (B6): subject and HTML body, which may hold smart fields
    (`inbox.smartfields`), filled from the linked items when the message is sent. Private to
    its owner, or shared with the whole company."""

    name = models.CharField(max_length=200)
    subject = models.CharField(max_length=998, blank=True)
    body_html = models.TextField(blank=True)
    folder = models.ForeignKey(
        TemplateFolder,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="templates",
        db_index=False,
    )
    owner = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    shared = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["company", "owner", "name"], name="mail_template_owner"),
            models.Index(
                fields=["company", "name"],
                condition=models.Q(shared=True),
                name="mail_template_shared",
            ),
            models.Index(fields=["company", "folder"], name="mail_template_folder"),
        ]

    def __str__(self) -> str:
        return self.name


class MailSignature(TenantModel):
    """The signature added to mail sent from an account: a user's own for that account (a
    personal account's owner, or one member of a team account), or the team account's
    (`user` None) for members who have none of their own. The composer picks it by the
    sending account."""

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, db_index=False)
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="+", db_index=False
    )
    body_html = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "account", "user"],
                name="mail_signature_account_user",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"signature of {self.account_id}/{self.user_id}"


class DraftState(models.TextChoices):
    OPEN = "open", _("Draft")
    SENT = "sent", _("Sent")  # handed to the outbox (`outbound`)
    DISCARDED = "discarded", _("Discarded")


class MailDraft(TenantModel):
    """A message being written in the composer, saved as the user types (B5). Its copy in the
    account's Drafts folder is kept in step by `mailsync.drafts`: `version` counts the saves,
    `remote_version` the one the server holds (`remote_folder`, `remote_uid`), `remote_due`
    when to write it next (None: in step). A sent or discarded draft stays until its server
    copy is gone, then goes.

    A draft another mail client left in Drafts is continued from its message
    (`source_message`): that server copy is replaced by ours at the first write."""

    token = models.CharField(max_length=64)  # in the server copy's Message-ID
    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, db_index=False)
    created_by = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+", db_index=False)
    state = models.CharField(max_length=16, choices=DraftState.choices, default=DraftState.OPEN)
    version = models.PositiveIntegerField(default=1)

    to = ArrayField(models.CharField(max_length=640), default=list, blank=True)
    cc = ArrayField(models.CharField(max_length=640), default=list, blank=True)
    bcc = ArrayField(models.CharField(max_length=640), default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    body_html = models.TextField(blank=True)
    reply_to_message = models.ForeignKey(
        MailMessage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    forward_of_message = models.ForeignKey(
        MailMessage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    deal = models.ForeignKey(
        "sales.Deal",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    lead = models.ForeignKey(
        "sales.Lead",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    project = models.ForeignKey(
        "sales.Project",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    person = models.ForeignKey(
        "contacts.Person",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    template = models.ForeignKey(
        MailTemplate,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    track_opens = models.BooleanField(default=False)
    track_links = models.BooleanField(default=False)
    send_at = models.DateTimeField(null=True, blank=True)
    outbound = models.ForeignKey(
        MailOutbound,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    source_message = models.ForeignKey(
        MailMessage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )

    remote_version = models.PositiveIntegerField(default=0)
    remote_folder = models.ForeignKey(
        MailFolder,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    remote_uid = models.BigIntegerField(null=True, blank=True)
    remote_due = models.DateTimeField(null=True, blank=True)
    remote_tries = models.PositiveSmallIntegerField(default=0)
    remote_error = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "token"], name="mail_draft_token"),
        ]
        indexes = [
            models.Index(
                fields=["company", "created_by", "-updated_at"],
                condition=models.Q(state="open"),
                name="mail_draft_open",
            ),
            # The server copies to write or remove.
            models.Index(
                fields=["company", "remote_due"],
                condition=models.Q(remote_due__isnull=False),
                name="mail_draft_remote_due",
            ),
        ]

    def __str__(self) -> str:
        return f"draft {self.pk}: {self.subject[:40]}"


class MailDraftFile(TenantModel):
    """A file attached to a draft (or an inline image, `inline` with its `content_id`), its
    bytes in the raw store until the draft is sent or discarded."""

    draft = models.ForeignKey(
        MailDraft, on_delete=models.CASCADE, related_name="files", db_index=False
    )
    filename = models.CharField(max_length=1000)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    storage_path = models.CharField(max_length=500)
    inline = models.BooleanField(default=False)
    content_id = models.CharField(max_length=998, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["company", "draft"], name="mail_draft_file_draft")]

    def __str__(self) -> str:
        return self.filename
