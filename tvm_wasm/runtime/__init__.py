"""The generated WebAssembly data plane.

Everything here produces WAT from small named Python functions; nothing
touches wasmtime except ``build.py`` (compile and validate).
"""
