"""The archive's schema as numbered migrations, applied in order and recorded in ``user_version``.

A campaign database outlives the code that wrote it (campaigns run for days, archives are
kept for years), so the schema only ever moves forward through these steps, each in one
transaction. Column comments double as documentation for anyone browsing the file with
``datasette archive/NAME.db``.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: campaigns, programs, per-seed evaluations, the grid's cells and progress events.
    """
    CREATE TABLE campaigns (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,              -- rule | policy
        config TEXT NOT NULL,            -- the campaign config as JSON
        state TEXT NOT NULL DEFAULT '{}',-- JSON: RNG state, counters, bandit; all a resume needs
        status TEXT NOT NULL DEFAULT 'created',  -- created | running | stopped | finished | interrupted
        created TEXT NOT NULL,
        updated TEXT NOT NULL
    );
    CREATE TABLE programs (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        sha TEXT NOT NULL,               -- sha256 of source: the same text is never evaluated twice
        fingerprint TEXT,                -- behaviour hash from the smoke stage
        parent_id INTEGER REFERENCES programs(id),
        parent_ids TEXT NOT NULL DEFAULT '[]',  -- JSON list: all parents (crossover has two)
        operator TEXT NOT NULL,          -- seed | ast.* | gp.* | llm ...
        model TEXT,                      -- the LLM that wrote it, if any
        island INTEGER,                  -- NULL for seeds, which start in every island
        generation INTEGER NOT NULL DEFAULT 0,
        genome TEXT,                     -- e.g. a GP tree in DEAP's string form
        note TEXT,                       -- what the operator changed, one line
        created TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
        evaluated TEXT,
        eval_seq INTEGER,                -- order of completion within the campaign (1, 2, ...)
        outcome TEXT,                    -- ok | rejected | candidate_error | timeout | ... | duplicate
        stage TEXT,                      -- static | smoke | hurdle | full
        score REAL,                      -- fitness; NULL unless outcome is ok (never NaN)
        ci_low REAL,
        ci_high REAL,
        descriptors TEXT,                -- JSON: descriptor name -> value
        metrics TEXT,                    -- JSON: iqm, auc, hurdle score, per-task summaries
        duplicate_of INTEGER REFERENCES programs(id),
        error TEXT,
        output_tail TEXT,
        wall_s REAL,
        cpu_s REAL,
        peak_rss_mb REAL,
        UNIQUE (campaign_id, sha)
    );
    CREATE TABLE evaluations (
        id INTEGER PRIMARY KEY,
        program_id INTEGER NOT NULL REFERENCES programs(id),
        task TEXT NOT NULL,
        seed INTEGER NOT NULL,
        held_out INTEGER NOT NULL DEFAULT 0,
        mean_return REAL NOT NULL,       -- measured by the trusted scorer
        normalized REAL NOT NULL,        -- (R - R_random) / (R_ref - R_random)
        auc REAL,                        -- normalised area under the learning curve
        curve TEXT,                      -- JSON list from the training job (diagnostic)
        train_wall_s REAL,
        UNIQUE (program_id, task, seed)
    );
    CREATE TABLE cells (
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        island INTEGER NOT NULL,
        cell INTEGER NOT NULL,           -- flat index into the MAP-Elites grid
        coords TEXT NOT NULL,            -- JSON list: the bin on each descriptor axis
        program_id INTEGER NOT NULL REFERENCES programs(id),
        score REAL NOT NULL,
        updated TEXT NOT NULL,
        PRIMARY KEY (campaign_id, island, cell)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        time TEXT NOT NULL,
        kind TEXT NOT NULL,              -- progress | start | stop | migration
        evaluations INTEGER NOT NULL,
        best REAL,
        qd_score REAL,
        coverage REAL,
        evals_per_hour REAL,
        data TEXT                        -- JSON: outcome counts, migration details, ...
    );
    """,
    # 2: indexes for selection and listings at 100k+ programs, and views for browsing.
    """
    CREATE INDEX programs_campaign_status ON programs (campaign_id, status, outcome);
    CREATE INDEX programs_campaign_seq ON programs (campaign_id, eval_seq);
    CREATE INDEX programs_campaign_score ON programs (campaign_id, score DESC);
    CREATE INDEX programs_fingerprint ON programs (campaign_id, fingerprint);
    CREATE INDEX programs_parent ON programs (parent_id);
    CREATE INDEX evaluations_program ON evaluations (program_id);
    CREATE INDEX events_campaign_time ON events (campaign_id, id);
    CREATE VIEW elites AS
        SELECT c.campaign_id, c.island, c.cell, c.coords, c.score, p.id AS program_id, p.operator,
               p.generation, p.descriptors, p.parent_id
        FROM cells c JOIN programs p ON p.id = c.program_id;
    CREATE VIEW outcomes AS
        SELECT campaign_id, outcome, COUNT(*) AS programs FROM programs
        WHERE status = 'done' GROUP BY campaign_id, outcome;
    """,
    # 3: every LLM call, linked to the program it produced.
    """
    CREATE TABLE llm_calls (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        program_id INTEGER REFERENCES programs(id),  -- the program this call's answer became, if any
        parent_id INTEGER REFERENCES programs(id),   -- the program the model was asked to improve
        conversation INTEGER NOT NULL,   -- one proposal: its calls share this number within the campaign
        model TEXT NOT NULL,             -- the configured label
        base_url TEXT NOT NULL,
        attempt INTEGER NOT NULL,        -- 1, 2, ... within one proposal (errors are sent back)
        status TEXT NOT NULL,            -- ok | edit_error | duplicate | llm_error
        prompt TEXT NOT NULL,            -- JSON list of chat messages sent
        response TEXT,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        cost REAL NOT NULL DEFAULT 0,    -- USD, from the configured prices
        latency_s REAL,
        error TEXT,
        created TEXT NOT NULL
    );
    CREATE INDEX llm_calls_campaign ON llm_calls (campaign_id, id);
    CREATE INDEX llm_calls_program ON llm_calls (program_id);
    CREATE INDEX llm_calls_conversation ON llm_calls (campaign_id, conversation);
    """,
    # 4: per-task results as rows, for readers who query the file (Datasette, sqlite-utils, SQL).
    """
    CREATE VIEW task_results AS  -- one row per program and task: its seeds' scores without unpacking JSON
        SELECT p.campaign_id,
               e.program_id,
               p.operator,
               p.outcome,
               e.task,                              -- environment id, e.g. CartPole-v1
               e.held_out,                          -- 1: a held-out task, reported but never selected on
               COUNT(*) AS seeds,
               AVG(e.normalized) AS normalized,     -- mean normalised score over the seeds
               json_extract(p.metrics, '$.' || IIF(e.held_out, 'held_out', 'tasks') || '."' || e.task
                            || '".ci[0]') AS ci_low,   -- bootstrap CI of that mean (from programs.metrics)
               json_extract(p.metrics, '$.' || IIF(e.held_out, 'held_out', 'tasks') || '."' || e.task
                            || '".ci[1]') AS ci_high,
               AVG(e.mean_return) AS mean_return,   -- raw return, mean over the seeds
               (SELECT json_group_array(mean_return) FROM (SELECT s.mean_return FROM evaluations s
                    WHERE s.program_id = e.program_id AND s.held_out = e.held_out AND s.task = e.task
                    ORDER BY s.seed)) AS returns,   -- JSON list: each seed's return, by seed
               (SELECT json_group_array(normalized) FROM (SELECT s.normalized FROM evaluations s
                    WHERE s.program_id = e.program_id AND s.held_out = e.held_out AND s.task = e.task
                    ORDER BY s.seed)) AS normalized_by_seed,  -- JSON list, by seed
               AVG(e.auc) AS auc,                   -- mean normalised area under the learning curves
               MAX(e.train_wall_s) AS train_wall_s  -- the task's training time in seconds
        FROM evaluations e JOIN programs p ON p.id = e.program_id
        GROUP BY p.campaign_id, e.program_id, e.held_out, e.task;
    """,
    # 5: an elite's confirmed score (measured again on fresh seeds), which cell contests use when both have one.
    """
    ALTER TABLE cells ADD COLUMN confirmed REAL;  -- NULL: the elite was not confirmed
    DROP VIEW elites;
    CREATE VIEW elites AS
        SELECT c.campaign_id, c.island, c.cell, c.coords, c.score, c.confirmed, p.id AS program_id, p.operator,
               p.generation, p.descriptors, p.parent_id
        FROM cells c JOIN programs p ON p.id = c.program_id;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaError(RuntimeError):
    """The database was written by a newer evosearch, or is not an evosearch archive."""


class NotAnArchive(SchemaError):
    """The file is not an evosearch archive: not SQLite, an empty database, or another program's database.

    A :class:`SchemaError`, so callers that already turn schema problems into one clear line
    handle it too; its message names the file and says what it is instead.
    """


def user_version(conn: sqlite3.Connection) -> int:
    """The schema version the archive records (0 for a new database, or one that is not an archive)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the database to ``target``; returns the version it was at. Each step is atomic."""
    current = user_version(conn)
    if current > SCHEMA_VERSION:
        raise SchemaError(f"the archive has schema version {current}, newer than this evosearch "
                          f"({SCHEMA_VERSION}): upgrade evosearch to open it")
    for version in range(current + 1, target + 1):
        script = MIGRATIONS[version - 1]
        # executescript would commit on its own; run the statements inside one explicit transaction.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return current


def _statements(script: str) -> list[str]:
    """Split a migration into statements, each with its comments, so ``sqlite_master`` keeps them.

    SQLite stores a CREATE statement's text as given: the column comments are the schema's
    documentation for anyone who opens the file with ``sqlite3``, ``sqlite-utils`` or Datasette.
    A ';' ends a statement only where SQLite agrees (``sqlite3.complete_statement``), so one inside
    a comment or a string does not split it. Comments before a statement are dropped by SQLite.
    """
    statements, start = [], 0
    for end, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start:end + 1]):
            statements.append(script[start:end + 1].strip())
            start = end + 1
    if script[start:].strip() and not all(_is_comment(line) for line in script[start:].splitlines()):
        raise ValueError(f"a migration ends without ';': {script[start:].strip()[:80]!r}")
    return statements


def _is_comment(line: str) -> bool:
    return not line.strip() or line.strip().startswith("--")
