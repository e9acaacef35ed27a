-- Rollouts (docs/management.md "Convergence"): the edge nodes a change waits for, captured when it
-- starts, and what each did with it. An activation points at its rollout, and so can any other
-- kind of change that edge nodes apply.
CREATE TABLE rollouts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL,
    network text NOT NULL,
    revision bigint NOT NULL,
    watch text NOT NULL,
    status text NOT NULL,
    started_at timestamptz NOT NULL,
    completed_at timestamptz,
    -- JSON: expected node name -> {state, detail, lost}. NULL: not captured yet (see below).
    nodes text
);
CREATE INDEX rollouts_open ON rollouts (status);

ALTER TABLE activations ADD COLUMN rollout_id bigint REFERENCES rollouts (id);

-- An activation in flight across the upgrade gets a rollout whose expected nodes the next
-- reconcile captures. Each activation has a revision of its own, which pairs the two.
INSERT INTO rollouts (kind, network, revision, watch, status, started_at, nodes)
SELECT 'activation', a.network, a.revision, s.name, a.status, a.created_at, NULL
FROM activations a JOIN ca_sets s ON s.id = a.ca_set_id
WHERE a.status = 'IN_PROGRESS';
UPDATE activations SET rollout_id = (
    SELECT r.id FROM rollouts r WHERE r.kind = 'activation' AND r.revision = activations.revision
) WHERE status = 'IN_PROGRESS';
