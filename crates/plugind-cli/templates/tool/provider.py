from typing import Any

from dify_plugin import ToolProvider
from dify_plugin.errors.tool import ToolProviderCredentialValidationError


class {{class}}Provider(ToolProvider):
    """Checks the credentials declared under `credentials_for_provider` (none yet)."""

    def _validate_credentials(self, credentials: dict[str, Any]) -> None:
        try:
            # Call your service with `credentials` here and raise when they are rejected.
            return None
        except Exception as e:
            raise ToolProviderCredentialValidationError(str(e)) from e
