from typing import Any

SCHEMA: int

def check(
    manifest_bytes: bytes,
    signature_bytes: bytes,
    trusted_keys: dict[str, str],
    model_bytes: bytes,
    board_class: str,
    installed_sequence: int = ...,
) -> dict[str, Any]: ...
