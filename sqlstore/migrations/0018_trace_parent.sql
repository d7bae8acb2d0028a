-- The W3C traceparent an event was accepted under, when the node that
-- accepted it traces (docs/operations.md, "Traces"): its deliveries' attempt
-- spans join that trace however much later, and on whichever node, they
-- are sent. NULL when tracing was off, which costs nothing.
ALTER TABLE events ADD COLUMN trace_parent TEXT;
