-- Progress of the block pipeline, so a restart resumes where it stopped.
CREATE TABLE pipeline_state (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
