"""inatdl: resumable, licence-aware bulk downloader of iNaturalist photos."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/inatdl/inatdl"
