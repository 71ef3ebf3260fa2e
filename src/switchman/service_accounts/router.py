"""`/api/admin/service-account` routes."""

from fastapi import APIRouter

router = APIRouter(tags=["Service Accounts"])
