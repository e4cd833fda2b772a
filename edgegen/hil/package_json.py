"""Write edgegen/firmware_py/package.json, the index `mpremote mip install` reads.

    .venv/bin/python -m edgegen.hil.package_json

Destinations are relative to the board's /lib; sources relative to package.json. A test keeps it in sync.
"""

from __future__ import annotations

import json

from edgegen import firmware_py
from edgegen.hil.deploy import FIRMWARE_DIR, firmware_files


def package_json() -> str:
    urls = [[f"firmware_py/{rel.as_posix()}", rel.as_posix()] for rel in firmware_files()]
    return json.dumps({"urls": urls, "version": firmware_py.VERSION}, indent=1) + "\n"


def main() -> None:
    path = FIRMWARE_DIR / "package.json"
    path.write_text(package_json())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
