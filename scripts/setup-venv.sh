# Shared by run.sh and test.sh (sourced): make .venv with Python >= 3.11 and
# install the project into it, skipping the install when it is up to date.
# The caller sets EXTRAS ("" or "[test]") and STAMP_KIND ("run" or "test").
die() { echo "${0##*/}: error: $*" >&2; exit 1; }

# The first interpreter that is Python >= 3.11 ($PYTHON wins if set).
find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3 python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [[ ! -x .venv/bin/python ]]; then
    python="$(find_python)" || die "tvm-wasm needs Python >= 3.11; none found (set PYTHON=/path/to/python3.11+)"
    echo "${0##*/}: creating .venv with $("$python" --version 2>&1)" >&2
    "$python" -m venv .venv || die "could not create .venv with $python"
fi
.venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die ".venv runs $(.venv/bin/python --version 2>&1), but tvm-wasm needs Python >= 3.11; remove .venv and retry"

# Reinstall only when pyproject.toml or the checkout's location changed.
hash="$(.venv/bin/python -c 'import hashlib, os, sys
h = hashlib.sha256(open("pyproject.toml", "rb").read())
h.update(os.getcwd().encode())
print(h.hexdigest()[:16])')"
if [[ -e ".venv/.installed-test-$hash" || ( "$STAMP_KIND" == run && -e ".venv/.installed-run-$hash" ) ]] &&
    [[ -x .venv/bin/tvm-wasm ]]; then
    :   # up to date
else
    echo "${0##*/}: installing tvm-wasm${EXTRAS} into .venv" >&2
    .venv/bin/python -m pip install --quiet --quiet --disable-pip-version-check -e ".${EXTRAS}" ||
        die "pip install -e '.${EXTRAS}' failed"
    rm -f .venv/.installed-*
    touch ".venv/.installed-$STAMP_KIND-$hash"
fi


# Binaryen for `tvm-wasm link` (npm package, pinned in package-lock.json): best effort, once.
if [[ ! -x node_modules/.bin/wasm-merge ]] && command -v npm >/dev/null 2>&1; then
    echo "${0##*/}: installing Binaryen (npm ci)" >&2
    npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1 ||
        echo "${0##*/}: warning: npm ci failed; tvm-wasm link needs Binaryen (see README)" >&2
fi

# The test suite's npm tools (pinned by their lock files, installed into git-ignored node_modules):
# componentize-js for the JavaScript guest template, TypeScript's tsc for the web package's .d.ts.
if [[ "$STAMP_KIND" == test ]] && command -v npm >/dev/null 2>&1; then
    for tool in .ci/npm:componentize-js .ci/tsc:tsc; do
        prefix="${tool%%:*}"
        if [[ ! -x "$prefix/node_modules/.bin/${tool##*:}" ]]; then
            echo "${0##*/}: installing ${tool##*:} for the tests (npm ci --prefix $prefix)" >&2
            npm ci --prefix "$prefix" --no-audit --no-fund --loglevel=error >/dev/null 2>&1 ||
                echo "${0##*/}: warning: npm ci --prefix $prefix failed; the tests that need ${tool##*:} will skip" >&2
        fi
    done
fi
