"""``python -m tvm_wasm.sdk [DOC.md ...]``: regenerate the shipped ``tvm.h`` and ``tvm.rs`` from the ABI
table, and the reference table inside each Markdown file given (between its abi-reference markers)."""

from __future__ import annotations

import sys
from pathlib import Path

from .generated import write_all
from .reference import splice

if __name__ == "__main__":
    for path in write_all():
        print(f"wrote {path}")
    for doc in map(Path, sys.argv[1:]):
        doc.write_text(splice(doc.read_text()))
        print(f"updated {doc}")
