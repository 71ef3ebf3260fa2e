"""Unleash-compatible admin routes of the embedded flag store."""

from fastapi import APIRouter

router = APIRouter(tags=["Flags"])
