"""The generation contract of docs/architecture.md: ``regnet.generate.generate_clips``.

The code lives in `regnet.generation` (inputs, media, generate, importing); this module is the
stable name other areas import.
"""

from regnet.generation.generate import GenerateReport, generate_clips
from regnet.generation.importing import ImportReport, import_clips, import_real

__all__ = ["GenerateReport", "ImportReport", "generate_clips", "import_clips", "import_real"]
