-- pg_saas: the audit chain's verification on the node of the organization's shards (Citus).
--
-- saas.audit_verify() called by a tenant's admin (not the owner) on a Citus coordinator has the
-- chain verified where it lives, over the caller's own connection (src/audit/audit_verify.c): read
-- from the coordinator as the owner it is refused once the caller has written the organization's
-- placements in the transaction. This function runs there; it checks the caller's right from the
-- forwarded context exactly as saas.audit_verify() does (admin of the organization, super_admin,
-- or an API key with audit:read), so calling it directly gives nothing more.
CREATE FUNCTION saas._audit_verify_here(org_id uuid, OUT ok boolean, OUT checked bigint,
		OUT first_bad_seq bigint, OUT problem text) RETURNS record
	AS 'MODULE_PATHNAME', 'saas_audit_verify_here' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION saas._audit_verify_here(uuid) IS
	'saas.audit_verify() on this node, for the routed verification on Citus; the same rights. Private.';
REVOKE ALL ON FUNCTION saas._audit_verify_here(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION saas._audit_verify_here(uuid) TO saas_api;
