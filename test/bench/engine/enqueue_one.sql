-- engine_3_latency: one job per transaction, as an application enqueues one (pgbench -R).
-- The job's Idempotency-Key is also the message's subject, so the sim's record of the message
-- (its receive time) can be matched to the job.
SELECT saas._enqueue(:org, 'communication-service', 'message.bench', 'POST', '/messages',
		jsonb_build_object('organization_id', :ref::text, 'recipient', 'latency@startup.io',
						   'template', 'bench', 'subject', s.k), s.k)
  FROM (SELECT :tag::text || gen_random_uuid()::text AS k) s;
