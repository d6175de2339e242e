"""Text helpers shared by the adapters."""

from __future__ import annotations


def split_message(text: str, size: int) -> list[str]:
    """Split long text at line breaks so each piece fits `size`, keeping code fences balanced."""
    if len(text) <= size:
        return [text]
    out: list[str] = []
    current = ""
    in_code = False
    width = max(20, size - 10)
    for line in text.split("\n"):
        pieces = [line[i:i + width] for i in range(0, len(line), width)] or [""]
        for piece in pieces:
            candidate = f"{current}\n{piece}" if current else piece
            if len(candidate) + 4 > size and current:
                out.append(current + ("\n```" if in_code else ""))
                current = ("```\n" if in_code else "") + piece
            else:
                current = candidate
        if line.strip().startswith("```"):
            in_code = not in_code
    if current:
        out.append(current)
    return out
