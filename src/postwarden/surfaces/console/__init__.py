"""The web console: pages for people, on the same services as the API."""
