"""Department manifests and the catalog built from them."""

from hub.catalog.loader import ManifestError, load_catalog
from hub.catalog.model import Catalog, EntityInfo, FieldInfo, RelationInfo

__all__ = ["Catalog", "EntityInfo", "FieldInfo", "ManifestError", "RelationInfo", "load_catalog"]
