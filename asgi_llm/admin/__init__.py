"""The admin API (`/admin/...`), served behind AuthMiddleware to admin roles only."""

from asgi_llm.admin.middleware import AdminMiddleware

__all__ = ["AdminMiddleware"]
