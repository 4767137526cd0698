"""SsmParameterStore and TelegramWebhookRegistrar: where `membergate init` stores the stack's secrets and tells Telegram its webhook."""

from __future__ import annotations

from typing import Any

from ..domain.errors import PermanentError


class SsmParameterStore:
    """SecureString parameters through a full SSM client (the intake's trimmed client only reads)."""

    def __init__(self, client: Any):
        self._client = client

    def get(self, name: str) -> str | None:
        try:
            return self._client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except self._client.exceptions.ParameterNotFound:
            return None
        except Exception as error:  # botocore's errors: no credentials, endpoint unreachable, access denied
            raise PermanentError(_explain(error, name), "ssm_unavailable") from None

    def put(self, name: str, value: str) -> None:
        try:
            self._client.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
        except Exception as error:
            raise PermanentError(_explain(error, name), "ssm_unavailable") from None


def _explain(error: Exception, name: str) -> str:
    # The error's class and code, never its text: it could echo the request, and the value is secret.
    code = getattr(error, "response", {}).get("Error", {}).get("Code") if hasattr(error, "response") else None
    return (f"SSM Parameter Store refused {name} ({code or type(error).__name__}): check your AWS credentials, "
            "region (--region) and ssm:GetParameter/PutParameter permissions, then re-run")


class TelegramWebhookRegistrar:
    def __init__(self, api: Any):
        self._api = api

    def register(self, url: str, secret: str) -> str:
        me = self._api.get_me()
        self._api.set_webhook(url, secret)
        return str(me.username)
