"""The admin dashboard: pages over the admin API, served by the stack (docs/dashboard.md)."""

from asgi_llm.dashboard.middleware import DashboardMiddleware

__all__ = ["DashboardMiddleware"]
