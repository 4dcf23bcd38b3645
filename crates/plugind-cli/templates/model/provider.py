import logging
from collections.abc import Mapping

from dify_plugin import ModelProvider
from dify_plugin.errors.model import CredentialsValidateFailedError

logger = logging.getLogger(__name__)


class {{class}}ModelProvider(ModelProvider):
    """Validates the credentials of `provider_credential_schema` in provider/{{module}}.yaml."""

    def validate_provider_credentials(self, credentials: Mapping) -> None:
        # This example accepts any key. A real provider would make a cheap authenticated
        # call here and raise CredentialsValidateFailedError when it fails.
        if not isinstance(credentials.get("api_key", ""), str):
            raise CredentialsValidateFailedError("api_key must be a string")
