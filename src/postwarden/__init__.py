"""postwarden: an account and access server for transactional email that speaks the Postmark API."""

__version__ = "0.1.0"
