"""The wasmtime host: Python control plane over the generated wasm data plane."""
