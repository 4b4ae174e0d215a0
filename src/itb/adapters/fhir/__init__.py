"""FHIR R4 for the clinic registry: a patient's whole record as a Bundle, and back.

``itb`` profiles its own mapping on the core resources (no implantable intrathecal pump
implementation guide exists); ``docs/fhir.md`` documents it, the codes it uses and
which are local.
"""

from itb.adapters.fhir.export import BundleContext, context_for, to_bundle
from itb.adapters.fhir.read import Importer, from_bundle

__all__ = ["BundleContext", "Importer", "context_for", "from_bundle", "to_bundle"]
