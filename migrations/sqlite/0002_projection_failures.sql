-- A projection that cannot apply an event is reported, not retried silently: the event's position, the error and
-- when it was first seen. Cleared when the projection gets past that event.
ALTER TABLE projection_state ADD COLUMN error text;
ALTER TABLE projection_state ADD COLUMN error_position bigint;
ALTER TABLE projection_state ADD COLUMN failed_at timestamptz;
