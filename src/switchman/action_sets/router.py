"""`/api/admin/projects/{projectId}/actions` routes."""

from fastapi import APIRouter

router = APIRouter(tags=["Projects"])
