"""Who may call what: authorization rules on a verified client certificate's identity, per binding,
path and method (docs/dataplane.md). Pure: parsed and compiled once per reload, evaluated per
request from facts read once per connection."""
