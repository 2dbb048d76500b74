"""The site: home, ticket page, admin, /status, the record's charts; templates and static files."""
