-- An idempotency key names one item for as long as the item is kept, not
-- only while it is active: a client that retries a request whose answer it
-- never saw finds the same item (and, once it finished, its outcome) instead
-- of causing a second delivery. Older items that shared a key with a newer
-- one (allowed before) keep theirs with their id appended.
UPDATE queue_items SET idempotency_key = idempotency_key || '~' || id
WHERE idempotency_key IS NOT NULL
  AND EXISTS (SELECT 1 FROM queue_items newer
              WHERE newer.workspace_id = queue_items.workspace_id
                AND newer.idempotency_key = queue_items.idempotency_key
                AND newer.id > queue_items.id);
DROP INDEX queue_items_active_key;
DROP INDEX queue_items_by_key;
CREATE UNIQUE INDEX queue_items_key ON queue_items (workspace_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- An operator may cancel a queued item: `cancelled` is a terminal state.
ALTER TABLE queue_items DROP CONSTRAINT queue_items_status_check;
ALTER TABLE queue_items ADD CONSTRAINT queue_items_status_check
    CHECK (status IN ('queued', 'dispatched', 'completed', 'failed', 'expired', 'cancelled'));
