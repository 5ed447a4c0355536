"""Errors the job store raises for expected conditions, so callers never parse SQL errors."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every expected job-store error."""


class UserExistsError(StoreError):
    """A user with that username already exists."""


class UnknownUserError(StoreError):
    """The user (by name or id) does not exist."""


class LastAdminError(StoreError):
    """The operation would leave the platform without any administrator."""


class JobExistsError(StoreError):
    """A job with that id already exists."""


class UnknownJobError(StoreError):
    """The job does not exist."""


class QuotaExceededError(StoreError):
    """The owner already has as many jobs as their quota allows; the message says which."""
