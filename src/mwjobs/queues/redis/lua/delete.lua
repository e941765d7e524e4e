-- delete: remove a whole queue, every state, atomically (MediaWiki JobQueueRedis::doDelete).
--
-- KEYS[1..8] {wiki}:jobqueue:{type}:{l-unclaimed, z-claimed, z-abandoned, z-delayed,
--            h-idBySha1, h-sha1ById, h-attempts, h-data}
-- KEYS[9]  global:jobqueue:s-queuesWithJobs     SET   queue IDs with live jobs
-- ARGV[1]  queue ID, the JSON ["type","domain"]
-- Returns the number of keys deleted. Root-job keys are left alone, as in MW.
local deleted = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4],
    KEYS[5], KEYS[6], KEYS[7], KEYS[8])
redis.call('SREM', KEYS[9], ARGV[1])
return deleted
