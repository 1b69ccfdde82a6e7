"""Lengths for people: pixels and, where the pixel size is known, picometres.

The analysis works in pixels (DESIGN.md section 4); everything a person reads (summary, table,
figures) gives a length in pm beside its pixels when the image's pixel size is known, and says
plainly that it is in pixels when it is not. :class:`Calibration` is the one place that
converts, so no output rounds or labels a length its own way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Where a pixel size came from, as :class:`Calibration` names it.
SOURCES = ("given", "file", "signal", "synthetic truth", "unknown")


@dataclass(frozen=True)
class Calibration:
    """The pixel size of one image and where it came from.

    Attributes
    ----------
    pixel_size_pm : picometres per pixel, or None when unknown.
    source : one of :data:`SOURCES`: given by the user, read from the file's calibration or a
        HyperSpy signal's axes, the synthetic image's truth, or unknown.
    """

    pixel_size_pm: float | None
    source: str = "unknown"

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"calibration source {self.source!r} is not one of {SOURCES}")
        if (self.pixel_size_pm is None) != (self.source == "unknown"):
            raise ValueError(f"pixel size {self.pixel_size_pm!r} does not match the source {self.source!r}")

    @property
    def known(self) -> bool:
        return self.pixel_size_pm is not None

    @property
    def unit(self) -> str:
        """The unit lengths are drawn and tabulated in: ``pm`` when known, else ``px``."""
        return "pm" if self.known else "px"

    def pm(self, px):
        """Pixels to picometres (a number or an array); None when the pixel size is unknown."""
        if not self.known:
            return None
        return np.asarray(px, dtype=float) * self.pixel_size_pm if np.ndim(px) else float(px) * self.pixel_size_pm

    def in_unit(self, px):
        """A length in :attr:`unit`: pm when known, else the pixels unchanged."""
        return self.pm(px) if self.known else px

    def length(self, px: float, digits: int = 2) -> dict[str, float | None]:
        """``{"px": ..., "pm": ...}`` for a summary (pm None when unknown, NaN as None)."""
        if px is None or not np.isfinite(px):
            return {"px": None, "pm": None}
        return {"px": round(float(px), digits), "pm": None if not self.known else round(float(px) * self.pixel_size_pm, 1)}

    @staticmethod
    def length_text(length: dict) -> str:
        """A :meth:`length` dict as text, ``"392 pm (26.1 px)"`` or ``"26.1 px"``."""
        if length["px"] is None:
            return "unknown"
        if length["pm"] is None:
            return f"{length['px']:.1f} px"
        return f"{length['pm']:.0f} pm ({length['px']:.1f} px)"

    def describe(self) -> dict:
        """What a summary says about its units."""
        if not self.known:
            return {"pixel_size_pm": None, "source": "unknown",
                    "note": "pixel size unknown: every length is in pixels (give the pixel size, e.g. "
                            "--pixel-size-pm, to get picometres)"}
        where = {"given": "as given", "file": "from the file's calibration", "signal": "from the signal's axes",
                 "synthetic truth": "of the synthetic image"}[self.source]
        return {"pixel_size_pm": round(self.pixel_size_pm, 4), "source": self.source,
                "note": f"lengths in pm, {self.pixel_size_pm:.4g} pm per pixel {where}, and in px"}


def calibration_of(pixel_size_pm: float | None, given: float | None, read: float | None,
                   read_from: str = "file") -> Calibration:
    """The :class:`Calibration` of a workflow's pixel size, naming where it came from.

    ``pixel_size_pm`` is what the workflow settled on (given, else the image's, else the truth's,
    see :class:`~ferrogym.workflows.workflow.Workflow`); ``given`` and ``read`` (from a file, or
    a signal: ``read_from``) are the candidates it chose from.
    """
    if pixel_size_pm is None:
        return Calibration(None)
    if given is not None:
        return Calibration(pixel_size_pm, "given")
    if read is not None:
        return Calibration(pixel_size_pm, read_from)
    return Calibration(pixel_size_pm, "synthetic truth")
