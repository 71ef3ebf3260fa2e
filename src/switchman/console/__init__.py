"""The web console (ADR 0026): server-rendered pages under /ui/."""
