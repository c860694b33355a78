"""HTTP API: app factory, one router per resource, schemas, auth, problem errors."""
