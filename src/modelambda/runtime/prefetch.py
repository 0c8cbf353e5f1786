"""The first thing the handler does: read the config and start fetching a remote model.

Imported before ``app`` (which imports numpy and the backend, 100-200 ms), so that an S3
download runs during those imports instead of after them. Standard library only.
"""

from __future__ import annotations

from modelambda.runtime.config import load_config
from modelambda.runtime.paths import Paths
from modelambda.runtime.sources import make_source

paths = Paths.from_environment()
config = load_config(paths)
source = make_source(config.source, paths, verify=config.model.verify_checksums)
source.start()
