"""`/api/admin/signal-endpoints` and `/api/admin/signals` routes."""

from fastapi import APIRouter

router = APIRouter(tags=["Operational"])
