"""The knowledge editor for staff: `/kakehashi kb`, record and document forms, uploads, history and revert."""
