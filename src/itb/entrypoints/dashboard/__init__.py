"""The clinic dashboard (server-rendered pages), mounted on the same app as the API."""

from itb.entrypoints.dashboard.app import mount_dashboard

__all__ = ["mount_dashboard"]
