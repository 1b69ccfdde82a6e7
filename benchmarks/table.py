"""Plain-text tables for the benchmark scripts (imported by them; not a benchmark itself)."""


def print_table(headers: list[str], rows: list[list], digits: int = 3) -> None:
    """Print rows under headers, numbers rounded, columns right-aligned."""
    cells = [[f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
