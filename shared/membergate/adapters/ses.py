"""Email to members through Amazon SES (API v2): plain text, from the one configured address."""

from __future__ import annotations

from typing import Any

from ..domain.errors import PermanentError, RetryableError

# SES refusals that sending again cannot fix (the creator must verify the sender or fix the address).
_PERMANENT = frozenset({"MessageRejected", "MailFromDomainNotVerifiedException", "AccountSuspendedException",
                        "SendingPausedException", "BadRequestException", "NotFoundException",
                        "InvalidParameterValue"})


class SesMailer:
    def __init__(self, client: Any, from_address: str):
        self.client = client
        self.from_address = from_address

    def send(self, to: str, subject: str, body: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.send_email(
                FromEmailAddress=self.from_address,
                Destination={"ToAddresses": [to]},
                Content={"Simple": {"Subject": {"Data": subject, "Charset": "UTF-8"},
                                    "Body": {"Text": {"Data": body, "Charset": "UTF-8"}}}},
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _PERMANENT:
                raise PermanentError(
                    f"SES refused the email ({code}): check that {self.from_address} is verified in SES "
                    "and the account is out of the SES sandbox", "email_refused",
                ) from None
            raise RetryableError(f"SES did not take the email ({code or 'error'}); retrying") from None
        except BotoCoreError as exc:
            raise RetryableError(f"SES unreachable ({type(exc).__name__}); retrying") from None
