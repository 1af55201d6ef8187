"""Puts this folder on ``sys.path`` (pytest's default import mode) so test
helpers shared across layers, such as ``raw_abi_spec``, import by name."""

import atexit
import os
import shutil
import tempfile

# Linked modules are cached on disk by default (tvm_wasm.linker.binaryen_cache); the suite keeps its
# own cache for the session, removed at exit, instead of writing to the user's ~/.cache.
if "TVM_WASM_LINK_CACHE" not in os.environ:
    os.environ["TVM_WASM_LINK_CACHE"] = _LINK_CACHE = tempfile.mkdtemp(prefix="tvm-wasm-test-link-cache-")
    atexit.register(shutil.rmtree, _LINK_CACHE, True)
