"""The seed API faces, one package each: ``extracts`` (seed 001), ``noco`` (seed 002), ``idm``
(seed 003).

The rule for every face: it maps its requests onto the services (``egress.services``, through
``egress.api.wiring``) and their answers back onto its own wire shapes, and holds no logic of
its own. A face installs its own error format (``egress.api.errors.install`` with its mapping
of logical field names — ``date_from``, ``where_clause`` — to the names its clients send), so
a 422 always names the field as the client sent it.
"""
