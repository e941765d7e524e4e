-- push: store a batch of jobs of one queue, atomically (MediaWiki JobQueueRedis::pushBlobs).
--
-- KEYS[1]  {wiki}:jobqueue:{type}:l-unclaimed   LIST  ready job IDs, newest on the left
-- KEYS[2]  {wiki}:jobqueue:{type}:h-sha1ById    HASH  job ID -> dedup hash
-- KEYS[3]  {wiki}:jobqueue:{type}:h-idBySha1    HASH  dedup hash -> job ID
-- KEYS[4]  {wiki}:jobqueue:{type}:z-delayed     ZSET  job ID scored by release time
-- KEYS[5]  {wiki}:jobqueue:{type}:h-data        HASH  job ID -> serialized record
-- KEYS[6]  global:jobqueue:s-queuesWithJobs     SET   queue IDs with live jobs
-- ARGV[1]  queue ID, the JSON ["type","domain"]
-- ARGV[2]  wake-up channel ('' = none): when ready jobs were stored, the queue ID is
--          PUBLISHed there (an mwjobs side channel; MediaWiki and the PHP services never
--          read it, and a channel stores nothing)
-- ARGV[3..] four per job: job ID, dedup hash ('' = none), release time ('0' = ready now),
--           serialized record
-- Returns the number of jobs stored. A job whose dedup hash is registered (an unclaimed or
-- delayed job has it) is dropped, whatever its release time.
local kUnclaimed, kSha1ById, kIdBySha1, kDelayed, kData, kQueues =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

if (#ARGV - 2) % 4 ~= 0 then
    return redis.error_reply('Unmatched arguments')
end

local pushed, ready = 0, 0
for i = 3, #ARGV, 4 do
    local id, sha1, release, blob = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    if sha1 == '' or redis.call('HEXISTS', kIdBySha1, sha1) == 0 then
        if tonumber(release) > 0 then
            redis.call('ZADD', kDelayed, release, id)
        else
            redis.call('LPUSH', kUnclaimed, id)
            ready = ready + 1
        end
        if sha1 ~= '' then
            redis.call('HSET', kSha1ById, id, sha1)
            redis.call('HSET', kIdBySha1, sha1, id)
        end
        redis.call('HSET', kData, id, blob)
        pushed = pushed + 1
    end
end

-- Only a batch that stored something registers the queue for the chron (as MW 1.43).
if pushed > 0 then
    redis.call('SADD', kQueues, ARGV[1])
end
if ready > 0 and ARGV[2] ~= '' then
    redis.call('PUBLISH', ARGV[2], ARGV[1])
end
return pushed
