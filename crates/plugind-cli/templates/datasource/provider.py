from collections.abc import Mapping
from typing import Any

from dify_plugin.errors.tool import ToolProviderCredentialValidationError
from dify_plugin.interfaces.datasource import DatasourceProvider


class {{class}}DatasourceProvider(DatasourceProvider):
    """Checks the credentials of `credentials_schema` (none yet)."""

    def _validate_credentials(self, credentials: Mapping[str, Any]) -> None:
        try:
            return None
        except Exception as e:
            raise ToolProviderCredentialValidationError(str(e)) from e
