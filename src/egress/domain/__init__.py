"""Pure rules of Egress: statuses and transitions, naming, types, paging. No I/O."""
