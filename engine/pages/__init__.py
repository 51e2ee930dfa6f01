"""The hosted login pages: server-rendered forms under /login on the same Flow as the JSON API."""
