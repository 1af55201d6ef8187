"""S-expressions of Binaryen's folded text (``wasm-opt --print``): parse one function, print it back.

Binaryen prints its IR as a tree, one node per parenthesised list, every
operand explicit; that is the form the hoisting pass rewrites. Atoms are kept
verbatim (names, immediates, quoted strings), so printing a parsed function
gives text Binaryen reads back unchanged.
"""

from __future__ import annotations

from typing import Union

Node = Union[str, list["Node"]]


def parse(text: str) -> list[Node]:
    """Every top-level s-expression in ``text``; ``ValueError`` on unbalanced parentheses."""
    stack: list[list[Node]] = [[]]
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c == "(":
            if text.startswith("(;", i):
                end = text.find(";)", i)
                i = n if end < 0 else end + 2
                continue
            stack.append([])
            i += 1
        elif c == ")":
            if len(stack) == 1:
                raise ValueError("unbalanced ')' in Binaryen text")
            done = stack.pop()
            stack[-1].append(done)
            i += 1
        elif c == ";" and text.startswith(";;", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            stack[-1].append(text[i : j + 1])
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in ' \t\r\n()"':
                j += 1
            stack[-1].append(text[i:j])
            i = j
    if len(stack) != 1:
        raise ValueError("unbalanced '(' in Binaryen text")
    return stack[0]


def render(node: Node) -> str:
    if isinstance(node, str):
        return node
    return "(" + " ".join(render(child) for child in node) + ")"


def head(node: Node) -> str | None:
    """The operator of a list node (``"loop"``, ``"call"``...), None for an atom or an empty list."""
    if isinstance(node, list) and node and isinstance(node[0], str):
        return node[0]
    return None


def walk(node: Node):  # type: ignore[no-untyped-def]
    """Every list node of the tree, parents before children."""
    if isinstance(node, list):
        yield node
        for child in node:
            yield from walk(child)


def top_level(text: str) -> list[str]:
    """The module text cut before each top-level field (Binaryen indents them by one space)."""
    chunks: list[str] = []
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        if (line.startswith(" (") or line.startswith(")")) and current:
            chunks.append("".join(current))
            current = []
        current.append(line)
    if current:
        chunks.append("".join(current))
    return chunks
