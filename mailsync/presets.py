"""Connection presets of common IMAP providers (A3): the "Add account" form fills host, port and
security from them. `{domain}` stands for the domain of the address being connected (hosting
companies that serve mail on the customer's own domain)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    imap_host: str
    imap_port: int
    imap_security: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    domains: tuple[str, ...] = ()
    # Shown beside the form: what the provider needs before IMAP works.
    hint: str = ""

    def filled(self, email_address: str) -> dict[str, str | int]:
        domain = email_address.rpartition("@")[2].lower()
        return {
            "imap_host": self.imap_host.format(domain=domain),
            "imap_port": self.imap_port,
            "imap_security": self.imap_security,
            "smtp_host": self.smtp_host.format(domain=domain),
            "smtp_port": self.smtp_port,
            "smtp_security": self.smtp_security,
        }


_APP_SPECIFIC_HINT = "Create an app password in the account's security settings and use it here."

PRESETS: dict[str, Preset] = {
    preset.key: preset
    for preset in (
        Preset(
            "yahoo",
            "Yahoo",
            "imap.mail.yahoo.com",
            993,
            "ssl",
            "smtp.mail.yahoo.com",
            465,
            "ssl",
            ("yahoo.com", "ymail.com", "rocketmail.com"),
            _APP_SPECIFIC_HINT,
        ),
        Preset(
            "icloud",
            "iCloud",
            "imap.mail.me.com",
            993,
            "ssl",
            "smtp.mail.me.com",
            587,
            "starttls",
            ("icloud.com", "me.com", "mac.com"),
            _APP_SPECIFIC_HINT,
        ),
        Preset(
            "aol",
            "AOL",
            "imap.aol.com",
            993,
            "ssl",
            "smtp.aol.com",
            465,
            "ssl",
            ("aol.com",),
            _APP_SPECIFIC_HINT,
        ),
        Preset(
            "fastmail",
            "FastMail",
            "imap.fastmail.com",
            993,
            "ssl",
            "smtp.fastmail.com",
            465,
            "ssl",
            ("fastmail.com", "fastmail.fm"),
            _APP_SPECIFIC_HINT,
        ),
        Preset("gandi", "GandiMail", "mail.gandi.net", 993, "ssl", "mail.gandi.net", 465, "ssl"),
        Preset(
            "gmx",
            "GMX",
            "imap.gmx.com",
            993,
            "ssl",
            "mail.gmx.com",
            587,
            "starttls",
            ("gmx.com", "gmx.net", "gmx.de"),
            "Turn on POP3/IMAP access in GMX's settings first.",
        ),
        Preset(
            "mailru",
            "Mail.ru",
            "imap.mail.ru",
            993,
            "ssl",
            "smtp.mail.ru",
            465,
            "ssl",
            ("mail.ru", "inbox.ru", "list.ru", "bk.ru"),
            _APP_SPECIFIC_HINT,
        ),
        Preset(
            "yandex",
            "Yandex",
            "imap.yandex.com",
            993,
            "ssl",
            "smtp.yandex.com",
            465,
            "ssl",
            ("yandex.com", "yandex.ru", "ya.ru"),
            "Allow IMAP in Yandex Mail's settings and use an app password.",
        ),
        Preset(
            "godaddy",
            "GoDaddy",
            "imap.secureserver.net",
            993,
            "ssl",
            "smtpout.secureserver.net",
            465,
            "ssl",
        ),
        Preset("hover", "Hover", "mail.hover.com", 993, "ssl", "mail.hover.com", 465, "ssl"),
        Preset(
            "namecheap",
            "Namecheap",
            "mail.privateemail.com",
            993,
            "ssl",
            "mail.privateemail.com",
            465,
            "ssl",
        ),
        Preset("bluehost", "Bluehost", "mail.{domain}", 993, "ssl", "mail.{domain}", 465, "ssl"),
        Preset(
            "soverin",
            "Soverin",
            "imap.soverin.net",
            993,
            "ssl",
            "smtp.soverin.net",
            587,
            "starttls",
            ("soverin.net",),
        ),
        Preset("zimbra", "Zimbra", "mail.{domain}", 993, "ssl", "mail.{domain}", 587, "starttls"),
        Preset(
            "123reg",
            "123-reg",
            "imap.123-reg.co.uk",
            993,
            "ssl",
            "smtp.123-reg.co.uk",
            587,
            "starttls",
        ),
        Preset(
            "qq",
            "QQ",
            "imap.qq.com",
            993,
            "ssl",
            "smtp.qq.com",
            465,
            "ssl",
            ("qq.com", "foxmail.com"),
            "Turn on IMAP in QQ Mail's settings and use the authorization code as password.",
        ),
        Preset(
            "126",
            "126",
            "imap.126.com",
            993,
            "ssl",
            "smtp.126.com",
            465,
            "ssl",
            ("126.com",),
            "Turn on IMAP in the mailbox's settings and use the client "
            "authorization code as password.",
        ),
        Preset(
            "163",
            "163",
            "imap.163.com",
            993,
            "ssl",
            "smtp.163.com",
            465,
            "ssl",
            ("163.com",),
            "Turn on IMAP in the mailbox's settings and use the client "
            "authorization code as password.",
        ),
        Preset(
            "yeah",
            "Yeah.net",
            "imap.yeah.net",
            993,
            "ssl",
            "smtp.yeah.net",
            465,
            "ssl",
            ("yeah.net",),
        ),
        Preset(
            "139", "139.com", "imap.139.com", 993, "ssl", "smtp.139.com", 465, "ssl", ("139.com",)
        ),
        Preset(
            "aliyun",
            "Aliyun",
            "imap.aliyun.com",
            993,
            "ssl",
            "smtp.aliyun.com",
            465,
            "ssl",
            ("aliyun.com",),
        ),
    )
}


def preset_for_address(email_address: str) -> Preset | None:
    """The preset whose provider hosts this address's domain, if one does."""
    domain = email_address.rpartition("@")[2].lower()
    for preset in PRESETS.values():
        if domain in preset.domains:
            return preset
    return None
