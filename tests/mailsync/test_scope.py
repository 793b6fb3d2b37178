"""What syncs (A4): all mail but spam and the bin, or exactly the folders chosen."""

from __future__ import annotations

from datetime import UTC, datetime

from inbox.models import FolderRole, MailAccount, MailFolder
from mailsync.sync import folder_syncs


def test_all_mail_leaves_out_spam_and_the_bin_even_if_they_were_chosen_before() -> None:
    everything = MailAccount(sync_all_folders=True)
    chosen = MailAccount(sync_all_folders=False)
    inbox = MailFolder(name="INBOX", role=FolderRole.INBOX, selected=False)
    trash = MailFolder(name="Trash", role=FolderRole.TRASH, selected=True)
    spam = MailFolder(name="Junk", role=FolderRole.JUNK, selected=False)
    gone = MailFolder(
        name="Old", role=FolderRole.OTHER, selected=True, removed_at=datetime.now(UTC)
    )

    assert [folder_syncs(everything, f) for f in (inbox, trash, spam, gone)] == [
        True, False, False, False,
    ]  # fmt: skip
    assert [folder_syncs(chosen, f) for f in (inbox, trash, spam, gone)] == [
        False, True, False, False,
    ]  # fmt: skip
