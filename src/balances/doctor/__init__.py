"""Store verification and repair (``balances store verify`` / ``repair``)."""

from balances.doctor.catalog import Layout
from balances.doctor.repair import RepairReport, layout_of, repair_store
from balances.doctor.verify import Finding, VerifyReport, verify_store

__all__ = [
    "Finding",
    "Layout",
    "RepairReport",
    "VerifyReport",
    "layout_of",
    "repair_store",
    "verify_store",
]
