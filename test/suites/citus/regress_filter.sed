# sed -E filter of suite 96_regress: applied to a regress file's answers on the Citus coordinator
# before they are compared with test/suites/citus/expected/NAME.out (only for the files that have
# one). It makes stable what changes from run to run and nothing else.
# A shard's relation name in a direct SQL error: "rate_limits_102012" -> "rate_limits_<shard>".
s/"([a-z_]+)_[0-9]{6}"/"\1_<shard>"/g
# The user id (made at run time) in the directories' refusal (55000).
s/(the directory entries of user )[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/\1<user id>/g
# The worker node an error came from (a port chosen at run time), in Citus's CONTEXT line.
s/^(CONTEXT:  |)(while executing command on )127\.0\.0\.1:[0-9]+$/\1\2<node>/
