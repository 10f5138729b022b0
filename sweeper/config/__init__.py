"""The search-space schema (frozen pydantic models), loading and `extends`, the tune section's rules, and
the masks that keep secrets out of what is logged."""
