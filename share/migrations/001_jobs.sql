-- 001_jobs.sql - the job store: every job, its status history, health
-- check outcomes and the daily aggregates.
--
-- `celeriac db migrate` runs each file in its own transaction and records
-- its number in schema_migrations (which it creates itself, before the
-- first file); so no file may hold BEGIN/COMMIT or CREATE INDEX
-- CONCURRENTLY.

CREATE TABLE jobs (
	id		bigserial PRIMARY KEY,
	task_id		text NOT NULL,		-- Celery's task id
	task_name	text NOT NULL,
	queue		text,
	job_type	text,			-- the API's kind of job; else the task name
	params		jsonb,			-- {"args": [...], "kwargs": {...}}
	status		text NOT NULL DEFAULT 'pending',
	retries		integer NOT NULL DEFAULT 0,
	worker_host	text,
	worker_pid	integer,
	created_at	timestamptz NOT NULL DEFAULT now(),
	queued_at	timestamptz,
	started_at	timestamptz,		-- of the latest attempt
	finished_at	timestamptz,
	result		jsonb,
	error_type	text,
	error_message	text,
	file_path	text,			-- a report's output, set by the task
	CONSTRAINT jobs_task_id_key UNIQUE (task_id),
	CONSTRAINT jobs_status_check CHECK (status IN ('pending', 'queued',
	    'started', 'retrying', 'succeeded', 'failed', 'revoked')),
	-- Cleanup and the daily metrics select finished jobs by finished_at.
	CONSTRAINT jobs_finished_check CHECK (finished_at IS NOT NULL OR
	    status NOT IN ('succeeded', 'failed', 'revoked'))
);

-- The order of statuses, for writers whose events may arrive late: a
-- finished job (rank 5) stays finished; otherwise a transition applies
-- when its (retries, rank) is not behind the job's (a retried job goes
-- back from retrying to started with one retry more).
CREATE FUNCTION job_status_rank(status text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce(array_position(
	'{pending,queued,started,retrying}'::text[], status), 5) $$;

CREATE FUNCTION job_status_applies(cur text, cur_retries integer,
    new text, new_retries integer) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT job_status_rank(cur) < 5 AND (job_status_rank(new) = 5 OR
	(new_retries, job_status_rank(new)) >=
	(cur_retries, job_status_rank(cur))) $$;

-- The API's listings: by status, by queue, or all, newest first.
CREATE INDEX jobs_status_created_idx ON jobs (status, created_at DESC);
CREATE INDEX jobs_queue_created_idx ON jobs (queue, created_at DESC);
CREATE INDEX jobs_created_idx ON jobs (created_at DESC);
-- cleanup_jobs and daily_metrics: finished jobs by finish time.
CREATE INDEX jobs_finished_idx ON jobs (finished_at)
    WHERE finished_at IS NOT NULL;

CREATE TABLE job_events (
	id		bigserial PRIMARY KEY,
	job_id		bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	status		text NOT NULL,
	at		timestamptz NOT NULL,
	detail		jsonb,			-- retries, host, pid, error
	CONSTRAINT job_events_status_check CHECK (status IN ('pending',
	    'queued', 'started', 'retrying', 'succeeded', 'failed',
	    'revoked'))
);

-- A job's history in order; unique so that a batch written twice (a
-- spill file replayed after a crash, a commit whose answer was lost)
-- adds nothing the second time.
CREATE UNIQUE INDEX job_events_job_at_idx ON job_events (job_id, at, status);

CREATE TABLE health_checks (
	id		bigserial PRIMARY KEY,
	at		timestamptz NOT NULL DEFAULT now(),
	ok		boolean NOT NULL,
	detail		jsonb NOT NULL
);
CREATE INDEX health_checks_at_idx ON health_checks (at DESC);

CREATE TABLE daily_metrics (
	day		date NOT NULL,		-- UTC day the jobs finished
	queue		text NOT NULL,		-- '' for jobs without a queue
	task_name	text NOT NULL,
	total		integer NOT NULL,
	succeeded	integer NOT NULL,
	failed		integer NOT NULL,
	revoked		integer NOT NULL,
	retried		integer NOT NULL,	-- jobs retried at least once
	retries		integer NOT NULL,	-- retries in all
	p50_seconds	double precision,	-- run time of the last attempt
	p95_seconds	double precision,
	max_seconds	double precision,
	computed_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (day, queue, task_name)
);
