"""SMTP, for the account's sending settings: the connection test the "Add account" form runs
before it saves (sending itself is the outbox's, in the compose issue).

    S: 220 smtp.example.com ESMTP
    C: EHLO crm                     S: 250-STARTTLS / 250-AUTH PLAIN LOGIN / 250 SIZE 26214400
    C: STARTTLS (for "starttls")    then EHLO again over TLS
    C: AUTH PLAIN …                 S: 235 ok | 535 authentication failed
"""

from __future__ import annotations

import smtplib
import ssl

from mailsync.providers.base import ConnectionSettings, ErrorKind, ProviderError, network_error


def smtp_connection_test(settings: ConnectionSettings) -> None:
    """Connect, secure and sign in as sending would. Raises ProviderError in plain words."""
    host = settings.host
    try:
        if settings.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                host, settings.port, timeout=settings.timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(host, settings.port, timeout=settings.timeout)
        with client:
            client.ehlo()
            if settings.security == "starttls":
                if not client.has_extn("starttls"):
                    raise ProviderError(
                        ErrorKind.PERMANENT,
                        f"The SMTP server {host} does not offer STARTTLS on port "
                        f"{settings.port}. Choose SSL/TLS (usually port 465) instead.",
                    )
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            # A server without AUTH (a relay that trusts this network) needs no sign-in.
            if client.has_extn("auth"):
                client.login(settings.username, settings.password)
    except ProviderError:
        raise
    except smtplib.SMTPAuthenticationError:
        raise ProviderError(
            ErrorKind.AUTH,
            "The SMTP server refused the username or password for sending. Check them (many "
            "providers need an app password) and try again.",
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise ProviderError(
            ErrorKind.PERMANENT,
            f"The SMTP server {host} offers no sign-in method we can use on this connection. "
            "Choose SSL/TLS or STARTTLS.",
        ) from None
    except (smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected) as exc:
        raise network_error(exc, host=host, service="SMTP") from None
    except smtplib.SMTPException as exc:
        raise ProviderError(
            ErrorKind.PERMANENT, f"The SMTP server {host} refused the connection: {exc}"
        ) from None
    except OSError as exc:
        raise network_error(exc, host=host, service="SMTP") from None
