"""The README and docs/ as the doc checks (test_docs.py, test_docs_names.py) read them: which
documents there are, their fenced code blocks with info string and line (also those indented
inside list items), and the text they present as code (inline spans and fenced blocks)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = "bash runnable"


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # 1-based line of the opening fence
    info: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


def split_doc(doc: Path) -> tuple[str, list[Block]]:
    """The prose of a document and its fenced code blocks (also indented inside list items)."""
    prose: list[str] = []
    blocks: list[Block] = []
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            prose.append(lines[i])
            i += 1
            continue
        fence, indent, start = m["fence"], len(m["indent"]), i
        body: list[str] = []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if len(stripped) >= len(fence) and set(stripped) == {fence[0]}:
                break
            line = lines[i]
            body.append(line[indent:] if not line[:indent].strip() else line)
            i += 1
        blocks.append(Block(doc, start + 1, m["info"].strip(), "\n".join(body) + "\n"))
        i += 1
    return "\n".join(prose), blocks


def fenced_blocks(doc: Path) -> list[Block]:
    return split_doc(doc)[1]


ALL_BLOCKS = [b for doc in DOCS for b in fenced_blocks(doc)]
RUNNABLE_DOCS = sorted({b.doc for b in ALL_BLOCKS if b.info == RUNNABLE})


def code_text(doc: Path) -> str:
    """What the docs present as code: inline code spans and fenced blocks, one per line."""
    prose, blocks = split_doc(doc)
    return "\n".join([*re.findall(r"`([^`\n]+)`", prose), *(b.text for b in blocks)])
