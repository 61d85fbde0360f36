"""Drives the Key Vault data-plane double with Microsoft's own `azure-keyvault-secrets` client, so
that the shapes the double accepts are proven to be the SDK's (crates/nimbus-azure/tests/secrets.rs).

Usage: python keyvault_sdk.py VAULT_URL TOKEN CA_CERT API_VERSION READ_NAME
Reads READ_NAME (set by nimbus), then sets, lists, deletes, recovers and purges secrets of its own;
prints one JSON object with what it saw.
"""

import json
import sys
import time

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.keyvault.secrets import SecretClient


class Token:
    """A credential that hands out the double's token (both credential protocols)."""

    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        self.scopes = scopes
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes, options=None):
        self.scopes = scopes
        return AccessTokenInfo(self.token, int(time.time()) + 3600)


def main():
    url, token, ca, api_version, read_name = sys.argv[1:6]
    credential = Token(token)
    kwargs = {"connection_verify": ca, "verify_challenge_resource": False}
    if api_version != "default":
        kwargs["api_version"] = api_version
    client = SecretClient(vault_url=url, credential=credential, **kwargs)
    out = {}
    read = client.get_secret(read_name)
    out["read"] = {"name": read.name, "value": read.value, "enabled": read.properties.enabled}
    client.set_secret("sdk-one", "first", content_type="text/plain", tags={"by": "sdk"})
    client.set_secret("sdk-one", "second")
    out["listed"] = sorted(p.name for p in client.list_properties_of_secrets(max_page_size=1))
    client.begin_delete_secret("sdk-one").wait()
    out["deleted"] = client.get_deleted_secret("sdk-one").name
    try:
        client.set_secret("sdk-one", "third")
        out["set_deleted"] = "accepted"
    except Exception as e:  # HttpResponseError: 409 ObjectIsDeletedButRecoverable
        out["set_deleted"] = type(e).__name__ + ": " + str(getattr(e, "status_code", ""))
    client.begin_recover_deleted_secret("sdk-one").wait()
    out["recovered"] = client.get_secret("sdk-one").value
    client.begin_delete_secret("sdk-one").wait()
    client.purge_deleted_secret("sdk-one")
    out["after_purge"] = sorted(p.name for p in client.list_properties_of_secrets())
    out["scopes"] = list(credential.scopes)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
