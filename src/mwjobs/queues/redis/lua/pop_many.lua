-- pop_many: claim up to N ready jobs, each exactly as MediaWiki's pop script claims one.
--
-- KEYS[1]  {wiki}:jobqueue:{type}:l-unclaimed   LIST  ready job IDs; the right end pops next
-- KEYS[2]  {wiki}:jobqueue:{type}:h-sha1ById    HASH  job ID -> dedup hash
-- KEYS[3]  {wiki}:jobqueue:{type}:h-idBySha1    HASH  dedup hash -> job ID
-- KEYS[4]  {wiki}:jobqueue:{type}:z-claimed     ZSET  job ID scored by claim time
-- KEYS[5]  {wiki}:jobqueue:{type}:h-attempts    HASH  job ID -> times popped
-- KEYS[6]  {wiki}:jobqueue:{type}:h-data        HASH  job ID -> serialized record
-- ARGV[1]  now (UNIX seconds; passed in, never redis TIME, so replicas agree)
-- ARGV[2]  the most jobs to claim
-- ARGV[3]  the most IDs to take off the list in this call (claims + ghosts), bounding the
--          time the script may hold the server
-- Returns {ghosts, drained, id1, record1, attempts1, id2, ...}: ghosts = IDs dropped because
-- they had no record; drained = 1 if the list ran empty.
--
-- Per job: RPOP; forget its dedup hash (a claimed job no longer blocks duplicates); ZADD the
-- claim time; HINCRBY attempts. Deviation from MW (docs/compatibility.md): an ID without a
-- record ("ghost") is dropped and the next one is tried, instead of being claimed and ending
-- the pop as if the queue were empty.
local kUnclaimed, kSha1ById, kIdBySha1, kClaimed, kAttempts, kData =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, want, budget = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

local out = {0, 0}
local claimed, ghosts = 0, 0
while claimed < want and claimed + ghosts < budget do
    local id = redis.call('RPOP', kUnclaimed)
    if not id then
        out[2] = 1
        break
    end
    local sha1 = redis.call('HGET', kSha1ById, id)
    if sha1 then
        redis.call('HDEL', kIdBySha1, sha1)
    end
    redis.call('HDEL', kSha1ById, id)
    local blob = redis.call('HGET', kData, id)
    if blob then
        redis.call('ZADD', kClaimed, now, id)
        local attempts = redis.call('HINCRBY', kAttempts, id, 1)
        out[#out + 1] = id
        out[#out + 1] = blob
        out[#out + 1] = attempts
        claimed = claimed + 1
    else
        redis.call('ZREM', kClaimed, id)
        redis.call('HDEL', kAttempts, id)
        ghosts = ghosts + 1
    end
end
out[1] = ghosts
return out
