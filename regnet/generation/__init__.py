"""Clips for human and objective evaluation: RegNet generation, importing other systems' output.

The one name other areas import: ``regnet.generation.generate_clips`` (and the importers)."""

from regnet.generation.generate import GenerateReport, generate_clips
from regnet.generation.importing import ImportReport, import_clips, import_real

__all__ = ["GenerateReport", "ImportReport", "generate_clips", "import_clips", "import_real"]
